//! The drill-down by date of issue (the seed's `date_hierarchy`): years, then the months of
//! a year, then the days of a month, each with the links that narrow the listing.

use minijinja::{context, Value};
use time::{Date, Month, OffsetDateTime, Time};

use super::listing::Listing;
use crate::store::admin::{DateRange, DayCount, SortKey};

/// The period chosen by the `year`, `month` and `day` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Period {
    /// No period: every date.
    All,
    /// One year.
    Year(i32),
    /// One month of a year.
    Month(i32, Month),
    /// One day.
    Day(Date),
}

impl Period {
    /// The period a listing's query string chooses; parts that do not make a date are
    /// ignored from the first bad one on.
    pub(crate) fn of<S: SortKey>(listing: &Listing<S>) -> Self {
        let number = |name| listing.get(name).and_then(|v| v.parse::<u16>().ok());
        let Some(year) = number("year").and_then(|y| (1970..=9999).contains(&y).then_some(y))
        else {
            return Self::All;
        };
        let year = i32::from(year);
        let Some(month) = number("month").and_then(|m| u8::try_from(m).ok())
        else {
            return Self::Year(year);
        };
        let Ok(month) = Month::try_from(month) else {
            return Self::Year(year);
        };
        match number("day")
            .and_then(|d| u8::try_from(d).ok())
            .and_then(|d| Date::from_calendar_date(year, month, d).ok())
        {
            Some(date) => Self::Day(date),
            None => Self::Month(year, month),
        }
    }

    /// The interval of issue times it covers.
    pub(crate) fn range(self) -> DateRange {
        let midnight = |date: Date| date.with_time(Time::MIDNIGHT).assume_utc();
        let first_of = |year: i32, month: Month| Date::from_calendar_date(year, month, 1).ok();
        let (from, until) = match self {
            Self::All => (None, None),
            Self::Year(year) => (first_of(year, Month::January), first_of(year + 1, Month::January)),
            Self::Month(year, month) => {
                let next_year = if month == Month::December { year + 1 } else { year };
                (first_of(year, month), first_of(next_year, month.next()))
            }
            Self::Day(date) => (Some(date), date.next_day()),
        };
        DateRange {
            from: from.map(midnight),
            until: until.map(midnight),
        }
    }

    /// Whether the day counts are needed to draw the links (they are not for the years,
    /// which come from the first and last issue times).
    pub(crate) fn needs_days(self) -> bool {
        matches!(self, Self::Year(_) | Self::Month(..))
    }
}

/// The drill-down bar: the way back up (`crumbs`) and the choices one level down (`links`),
/// each with the number of rows when known. `bounds` are the first and last issue times of
/// the whole listing, `days` the counts per day within the period.
pub(crate) fn drill_down<S: SortKey>(
    listing: &Listing<S>,
    period: Period,
    bounds: Option<(OffsetDateTime, OffsetDateTime)>,
    days: &[DayCount],
) -> Value {
    let url = |year: Option<String>, month: Option<String>, day: Option<String>| {
        listing.url_with(&[
            ("year", year.as_deref()),
            ("month", month.as_deref()),
            ("day", day.as_deref()),
        ])
    };
    let mut crumbs = Vec::new();
    let mut links = Vec::new();
    let all = || context! { label => "All dates", url => url(None, None, None) };
    match (period, year_month(period)) {
        (Period::All, _) => {
            if let Some((first, last)) = bounds {
                for year in first.year()..=last.year() {
                    links.push(context! {
                        label => year.to_string(),
                        url => url(Some(year.to_string()), None, None),
                    });
                }
            }
        }
        (Period::Year(year), _) => {
            crumbs.push(all());
            let mut months: Vec<(Month, i64)> = Vec::new();
            for day in days {
                match months.last_mut() {
                    Some((month, count)) if *month == day.day.month() => *count += day.count,
                    _ => months.push((day.day.month(), day.count)),
                }
            }
            for (month, count) in months {
                links.push(context! {
                    label => format!("{month} {year}"),
                    count => count,
                    url => url(Some(year.to_string()), Some(u8::from(month).to_string()), None),
                });
            }
        }
        (_, Some((year, month))) => {
            crumbs.push(all());
            crumbs.push(context! {
                label => year.to_string(),
                url => url(Some(year.to_string()), None, None),
            });
            if let Period::Day(date) = period {
                crumbs.push(context! {
                    label => format!("{month} {year}"),
                    url => url(Some(year.to_string()), Some(u8::from(month).to_string()), None),
                });
                links.push(context! {
                    label => format!("{month} {}, {year}", date.day()),
                    url => listing.url_with(&[]),
                });
            } else {
                for day in days {
                    links.push(context! {
                        label => format!("{month} {}", day.day.day()),
                        count => day.count,
                        url => url(
                            Some(year.to_string()),
                            Some(u8::from(month).to_string()),
                            Some(day.day.day().to_string()),
                        ),
                    });
                }
            }
        }
        (_, None) => {}
    }
    context! { crumbs => crumbs, links => links, chosen => period != Period::All }
}

/// The year and month a period lies in, for a month or a day.
fn year_month(period: Period) -> Option<(i32, Month)> {
    match period {
        Period::Month(year, month) => Some((year, month)),
        Period::Day(date) => Some((date.year(), date.month())),
        Period::All | Period::Year(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use axum::extract::RawQuery;
    use time::macros::datetime;

    use super::*;
    use crate::store::admin::TokenSort;

    fn period(query: &str) -> Period {
        let listing: Listing<TokenSort> =
            Listing::parse("/admin/", "tokens/", RawQuery(Some(query.to_owned())));
        Period::of(&listing)
    }

    #[test]
    fn periods_cover_whole_days_in_utc() {
        assert_eq!(period(""), Period::All);
        assert_eq!(period("year=2026").range().from, Some(datetime!(2026-01-01 0:00 UTC)));
        assert_eq!(period("year=2026").range().until, Some(datetime!(2027-01-01 0:00 UTC)));
        let december = period("year=2026&month=12").range();
        assert_eq!(december.from, Some(datetime!(2026-12-01 0:00 UTC)));
        assert_eq!(december.until, Some(datetime!(2027-01-01 0:00 UTC)));
        let day = period("year=2026&month=2&day=28").range();
        assert_eq!(day.until, Some(datetime!(2026-03-01 0:00 UTC)));
    }

    #[test]
    fn impossible_dates_stop_at_the_last_good_part() {
        assert_eq!(period("year=2026&month=2&day=30"), Period::Month(2026, Month::February));
        assert_eq!(period("year=2026&month=13"), Period::Year(2026));
        assert_eq!(period("year=abc&month=1"), Period::All);
    }
}
