//! The polls tables, beside oauthost's in the same database.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use serde_json::{json, value::RawValue, Value};
use sqlx::{any::AnyPoolOptions, AnyPool, Row};

/// The sample polls `migrate` seeds: poll `n` has choices `3n-2`, `3n-1`, `3n`.
const SAMPLES: [(&str, [&str; 3]); 5] = [
    (
        "Which language do you write web services in?",
        ["Rust", "Python", "Go"],
    ),
    (
        "Which OAuth 2.0 grant do you use most?",
        ["Authorization code", "Client credentials", "Refresh token"],
    ),
    (
        "Where do your clients send their tokens?",
        ["Authorization header", "Form body", "Query string"],
    ),
    (
        "Which database runs your servers?",
        ["PostgreSQL", "SQLite", "Something else"],
    ),
    (
        "How often do you rotate client secrets?",
        ["Monthly", "Yearly", "Never"],
    ),
];

/// `value` written out once, to be answered as it is.
fn raw(value: &Value) -> Result<Arc<RawValue>, sqlx::Error> {
    serde_json::value::to_raw_value(value)
        .map(Arc::from)
        .map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

const TABLES: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS polls_polls (id BIGINT PRIMARY KEY, question TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS polls_choices (id BIGINT PRIMARY KEY, \
     poll_id BIGINT NOT NULL REFERENCES polls_polls (id), text TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS polls_votes (choice_id BIGINT NOT NULL REFERENCES polls_choices (id), \
     username TEXT NOT NULL, voted_at BIGINT NOT NULL)",
];

/// Why a vote was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum VoteError {
    /// No such poll.
    UnknownPoll,
    /// The choice is not one of the poll's.
    NotAChoice,
}

/// The polls database.
///
/// Polls and their choices never change once `migrate` has seeded them (no view edits
/// them), so they are read once, on first use, and kept in memory as the JSON the views
/// answer (a server must be restarted to see polls added to the tables by hand): the listing
/// and a poll's page cost no query and no serializing. Votes are always read from the
/// database.
#[derive(Debug, Clone)]
pub struct Polls {
    pool: AnyPool,
    catalogue: Arc<RwLock<Option<Arc<Catalogue>>>>,
}

/// The polls and choices, as the views answer them.
#[derive(Debug)]
struct Catalogue {
    /// `[{id, question}]`, ordered by id.
    list: Arc<RawValue>,
    /// Each poll's question, and its `{id, question, choices}`.
    polls: HashMap<i64, (String, Arc<RawValue>)>,
}

impl Polls {
    /// Connects to the database of `database_url` (the one oauthost uses).
    pub async fn connect(database_url: &str) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .connect(database_url)
            .await?;
        Ok(Self {
            pool,
            catalogue: Arc::default(),
        })
    }

    /// The polls and choices, read from the database the first time.
    async fn catalogue(&self) -> Result<Arc<Catalogue>, sqlx::Error> {
        if let Some(catalogue) = self.catalogue.read().ok().and_then(|c| c.clone()) {
            return Ok(catalogue);
        }
        let polls = sqlx::query("SELECT id, question FROM polls_polls ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let choices = sqlx::query("SELECT id, poll_id, text FROM polls_choices ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut by_poll: HashMap<i64, Vec<Value>> = HashMap::new();
        for row in &choices {
            by_poll
                .entry(row.get::<i64, _>(1))
                .or_default()
                .push(json!({ "id": row.get::<i64, _>(0), "text": row.get::<String, _>(2) }));
        }
        let mut list = Vec::new();
        let mut details = HashMap::new();
        for row in &polls {
            let (id, question) = (row.get::<i64, _>(0), row.get::<String, _>(1));
            list.push(json!({ "id": id, "question": question }));
            let choices = by_poll.remove(&id).unwrap_or_default();
            let detail = json!({ "id": id, "question": question, "choices": choices });
            details.insert(id, (question, raw(&detail)?));
        }
        let catalogue = Arc::new(Catalogue {
            list: raw(&Value::Array(list))?,
            polls: details,
        });
        // Not kept while there are no polls: `migrate` may not have run yet.
        if !catalogue.polls.is_empty() {
            if let Ok(mut slot) = self.catalogue.write() {
                *slot = Some(Arc::clone(&catalogue));
            }
        }
        Ok(catalogue)
    }

    /// Creates the tables and, when there are no polls yet, seeds the five samples.
    /// Running it again changes nothing.
    pub async fn migrate(&self) -> Result<Vec<String>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for statement in TABLES {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM polls_polls")
            .fetch_one(&mut *tx)
            .await?;
        let mut report = Vec::new();
        if count == 0 {
            for (n, (question, choices)) in (1_i64..).zip(SAMPLES) {
                sqlx::query("INSERT INTO polls_polls (id, question) VALUES ($1, $2)")
                    .bind(n)
                    .bind(question)
                    .execute(&mut *tx)
                    .await?;
                for (offset, text) in (0_i64..).zip(choices) {
                    sqlx::query(
                        "INSERT INTO polls_choices (id, poll_id, text) VALUES ($1, $2, $3)",
                    )
                    .bind(3 * n - 2 + offset)
                    .bind(n)
                    .bind(text)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            report.push("Polls: created the tables and seeded 5 sample polls.".to_owned());
        } else {
            report.push("Polls: the tables are up to date.".to_owned());
        }
        tx.commit().await?;
        if let Ok(mut slot) = self.catalogue.write() {
            *slot = None;
        }
        Ok(report)
    }

    /// Every poll, id and question, as JSON.
    pub async fn list(&self) -> Result<Arc<RawValue>, sqlx::Error> {
        Ok(Arc::clone(&self.catalogue().await?.list))
    }

    async fn question(&self, poll: i64) -> Result<Option<String>, sqlx::Error> {
        let catalogue = self.catalogue().await?;
        Ok(catalogue
            .polls
            .get(&poll)
            .map(|(question, _)| question.clone()))
    }

    /// One poll with its choices, as JSON, or `None`.
    pub async fn detail(&self, poll: i64) -> Result<Option<Arc<RawValue>>, sqlx::Error> {
        let catalogue = self.catalogue().await?;
        Ok(catalogue
            .polls
            .get(&poll)
            .map(|(_, detail)| Arc::clone(detail)))
    }

    /// The votes per choice of one poll, or `None`.
    pub async fn results(&self, poll: i64) -> Result<Option<Value>, sqlx::Error> {
        let Some(question) = self.question(poll).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT c.id, c.text, COUNT(v.choice_id) FROM polls_choices c \
             LEFT JOIN polls_votes v ON v.choice_id = c.id \
             WHERE c.poll_id = $1 GROUP BY c.id, c.text ORDER BY c.id",
        )
        .bind(poll)
        .fetch_all(&self.pool)
        .await?;
        let results: Vec<Value> = rows
            .iter()
            .map(|row| {
                json!({
                    "choice_id": row.get::<i64, _>(0),
                    "text": row.get::<String, _>(1),
                    "votes": row.get::<i64, _>(2),
                })
            })
            .collect();
        Ok(Some(
            json!({ "id": poll, "question": question, "results": results }),
        ))
    }

    /// Totals for one poll, or `None`.
    pub async fn stats(&self, poll: i64) -> Result<Option<Value>, sqlx::Error> {
        if self.question(poll).await?.is_none() {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT COUNT(v.choice_id), COUNT(DISTINCT v.username) FROM polls_votes v \
             JOIN polls_choices c ON c.id = v.choice_id WHERE c.poll_id = $1",
        )
        .bind(poll)
        .fetch_one(&self.pool)
        .await?;
        let (choices,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM polls_choices WHERE poll_id = $1")
                .bind(poll)
                .fetch_one(&self.pool)
                .await?;
        Ok(Some(json!({
            "id": poll,
            "total_votes": row.get::<i64, _>(0),
            "voters": row.get::<i64, _>(1),
            "choices": choices,
        })))
    }

    /// Records `username`'s vote for `choice` in `poll`.
    pub async fn vote(
        &self,
        poll: i64,
        choice: i64,
        username: &str,
        at: i64,
    ) -> Result<Result<(), VoteError>, sqlx::Error> {
        if self.question(poll).await?.is_none() {
            return Ok(Err(VoteError::UnknownPoll));
        }
        let inserted = sqlx::query(
            "INSERT INTO polls_votes (choice_id, username, voted_at) \
             SELECT id, $3, $4 FROM polls_choices WHERE id = $1 AND poll_id = $2",
        )
        .bind(choice)
        .bind(poll)
        .bind(username)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(if inserted.rows_affected() == 1 {
            Ok(())
        } else {
            Err(VoteError::NotAChoice)
        })
    }
}
