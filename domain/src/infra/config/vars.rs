//! Reading one variable: trimmed, required or defaulted, parsed, each failure naming it.

use std::collections::HashSet;

use secrecy::SecretString;
use url::Url;

use super::ConfigError;

pub(super) fn problem(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

/// Reads variables through `lookup` so tests can configure without touching the process environment.
pub(super) struct Vars<F: Fn(&str) -> Option<String>>(pub(super) F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    pub(super) fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name)
            .ok_or_else(|| problem(name, "is required but not set"))
    }

    pub(super) fn secret(&self, name: &'static str) -> Result<SecretString, ConfigError> {
        self.required(name).map(SecretString::from)
    }

    pub(super) fn parsed<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| problem(name, format!("must be {what}"))),
        }
    }

    pub(super) fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["false", "0", "no", "off"].contains(&v.as_str()) => Ok(false),
            Some(_) => Err(problem(name, "must be true or false")),
        }
    }

    pub(super) fn url(&self, name: &'static str, raw: String) -> Result<Url, ConfigError> {
        let url = Url::parse(&raw).map_err(|_| problem(name, "must be an absolute http(s) URL"))?;
        match url.scheme() {
            "http" | "https" if url.host().is_some() => Ok(url),
            _ => Err(problem(name, "must be an absolute http(s) URL")),
        }
    }

    pub(super) fn id_list(&self, name: &'static str) -> Result<HashSet<String>, ConfigError> {
        let raw = self.optional(name).unwrap_or_default();
        raw.split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| match crate::patreon::resources::is_numeric_id(id) {
                true => Ok(id.to_owned()),
                false => Err(problem(
                    name,
                    "must be comma-separated numeric Patreon user ids",
                )),
            })
            .collect()
    }
}
