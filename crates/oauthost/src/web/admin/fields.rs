//! Form validation: the errors shown next to each field, and the entered values kept.

use std::collections::BTreeMap;

use minijinja::Value;
use oauthost_core::params::Params;

use crate::{store::StoreError, toolbox::ToolboxError};

/// The errors of a posted form, by field name.
#[derive(Debug, Default)]
pub(crate) struct FieldErrors(BTreeMap<&'static str, String>);

impl FieldErrors {
    /// Records `message` for `field` (the first error of a field is kept).
    pub(crate) fn add(&mut self, field: &'static str, message: impl ToString) {
        self.0
            .entry(field)
            .or_insert_with(|| sentence(&message.to_string()));
    }

    /// `result`'s value, or `None` with its error recorded for `field`.
    pub(crate) fn check<T, E: ToString>(
        &mut self,
        field: &'static str,
        result: Result<T, E>,
    ) -> Option<T> {
        result.map_err(|error| self.add(field, error)).ok()
    }

    /// Whether the form is valid.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors for the template: `errors.title` and so on.
    pub(crate) fn to_value(&self) -> Value {
        Value::from_serialize(&self.0)
    }

    /// Records a failed save: a taken unique value against its field (`fields` maps the
    /// store's names, such as `"client title"`, to form fields). Any other failure is
    /// handed back.
    pub(crate) fn taken(
        &mut self,
        error: ToolboxError,
        fields: &[(&str, &'static str)],
    ) -> Result<(), ToolboxError> {
        if let ToolboxError::Store(StoreError::Duplicate { what, value }) = &error {
            let field = fields
                .iter()
                .find(|(name, _)| name == what)
                .or_else(|| fields.first())
                .map(|(_, field)| *field);
            if let Some(field) = field {
                self.add(field, format!("{what} {value:?} is already taken"));
                return Ok(());
            }
        }
        Err(error)
    }
}

/// `message` with a capital first letter, as it stands alone next to a field.
pub(crate) fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The text of field `name` as posted (empty when absent); a field sent twice counts as
/// absent, and the form will fail on it elsewhere.
pub(crate) fn text<'a>(params: &'a Params, name: &str) -> &'a str {
    params.get(name).ok().flatten().unwrap_or_default()
}

/// Whether checkbox `name` was ticked.
pub(crate) fn checkbox(params: &Params, name: &str) -> bool {
    params.contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_sentences_and_the_first_one_stays() {
        let mut errors = FieldErrors::default();
        errors.add("title", "the client title must not be empty");
        errors.add("title", "a second problem");
        assert_eq!(
            errors.0.get("title").map(String::as_str),
            Some("The client title must not be empty")
        );
        assert_eq!(errors.check("link", Err::<(), _>("élan")), None);
        assert_eq!(errors.0.get("link").map(String::as_str), Some("Élan"));
        assert!(!errors.is_empty());
    }
}
