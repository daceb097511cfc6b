//! Turning one source row into a profile fit for `users`, or the reason it is not.

use super::source::SourceRow;
use crate::PatreonUserId;

pub const MAX_EMAIL: usize = 254;
pub const MAX_NAME: usize = 255;
pub const MAX_AVATAR_URL: usize = 2048;
pub const MAX_TIER: usize = 255;

/// A row that passed every check, normalized: trimmed, empty text as absent, flags as given
/// (absent counts as false, so an unknown paid flag never grants access).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub patreon_id: PatreonUserId,
    pub email: Option<String>,
    /// Why the row's email was left out, when it was.
    pub email_dropped: Option<EmailDropped>,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    pub tier: Option<String>,
    pub paid: bool,
    pub team: bool,
}

/// Why a row was not imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    MissingId,
    BadId,
    DuplicateId,
    NameTooLong,
    AvatarNotHttpUrl,
    AvatarTooLong,
    TierTooLong,
    /// Not malformed: the member signed in (or was checked) already, and Patreon's data wins.
    AlreadyVerified,
}

impl SkipReason {
    pub fn describe(self) -> String {
        match self {
            Self::MissingId => "missing id".into(),
            Self::BadId => "id is not a Patreon user id (digits, no leading zero)".into(),
            Self::DuplicateId => "duplicate id (every row with it skipped)".into(),
            Self::NameTooLong => format!("name longer than {MAX_NAME} characters"),
            Self::AvatarNotHttpUrl => "avatar is not an http(s) URL".into(),
            Self::AvatarTooLong => format!("avatar URL longer than {MAX_AVATAR_URL} characters"),
            Self::TierTooLong => format!("membership tier longer than {MAX_TIER} characters"),
            Self::AlreadyVerified => "already verified by Patreon".into(),
        }
    }

    pub fn is_malformed(self) -> bool {
        self != Self::AlreadyVerified
    }
}

/// Why a row was imported without its email.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EmailDropped {
    Invalid,
    TooLong,
}

impl EmailDropped {
    pub fn describe(self) -> String {
        match self {
            Self::Invalid => "invalid email".into(),
            Self::TooLong => format!("email longer than {MAX_EMAIL} characters"),
        }
    }
}

pub fn parse(row: &SourceRow) -> Result<Profile, SkipReason> {
    let id = trimmed(&row.id).ok_or(SkipReason::MissingId)?;
    // Patreon user ids are decimal numbers; anything else (padding, signs, leading zeros)
    // could alias another member's id, so it is refused rather than normalized.
    let canonical = id.parse::<u64>().ok().map(|n| n.to_string());
    if canonical.as_deref() != Some(id) || row.id.as_deref() != Some(id) {
        return Err(SkipReason::BadId);
    }
    let mut email = trimmed(&row.email);
    let email_dropped = email.and_then(|email| {
        if email.chars().count() > MAX_EMAIL {
            Some(EmailDropped::TooLong)
        } else if !looks_like_email(email) {
            Some(EmailDropped::Invalid)
        } else {
            None
        }
    });
    if email_dropped.is_some() {
        email = None;
    }
    let name = trimmed(&row.name);
    if name.is_some_and(|n| n.chars().count() > MAX_NAME) {
        return Err(SkipReason::NameTooLong);
    }
    let avatar = trimmed(&row.avatar);
    if let Some(avatar) = avatar {
        if avatar.len() > MAX_AVATAR_URL {
            return Err(SkipReason::AvatarTooLong);
        }
        // Served to browsers as an image source: only web URLs, never `javascript:` or paths.
        let web = url::Url::parse(avatar).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !web {
            return Err(SkipReason::AvatarNotHttpUrl);
        }
    }
    let tier = trimmed(&row.tier);
    if tier.is_some_and(|t| t.chars().count() > MAX_TIER) {
        return Err(SkipReason::TierTooLong);
    }
    Ok(Profile {
        patreon_id: PatreonUserId::from(id),
        email: email.map(str::to_owned),
        email_dropped,
        name: name.map(str::to_owned),
        avatar_url: avatar.map(str::to_owned),
        tier: tier.map(str::to_owned),
        paid: row.paid.unwrap_or(false),
        team: row.team.unwrap_or(false),
    })
}

fn trimmed(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A plausible address: one `@`, something before it, a dotted domain after it, no spaces or
/// control characters. Deliverability is Patreon's business; this only keeps junk out.
fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let clean = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    clean(local)
        && clean(domain)
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> SourceRow {
        SourceRow {
            id: Some(id.into()),
            email: Some("ada@example.com".into()),
            name: Some(" Ada ".into()),
            avatar: Some("https://c8.patreon.com/a.png".into()),
            tier: Some("Gold".into()),
            paid: Some(true),
            team: None,
        }
    }

    #[test]
    fn a_good_row_is_trimmed_and_absent_flags_are_false() {
        let p = parse(&row("12345")).unwrap();
        assert_eq!(p.patreon_id, "12345");
        assert_eq!(p.name.as_deref(), Some("Ada"));
        assert!(p.paid && !p.team);
        let empty = SourceRow {
            email: Some("  ".into()),
            avatar: Some(String::new()),
            paid: None,
            ..row("7")
        };
        let p = parse(&empty).unwrap();
        assert_eq!((p.email, p.avatar_url, p.paid), (None, None, false));
    }

    #[test]
    fn a_malformed_email_is_left_out_and_the_row_kept() {
        for email in ["nope", "a@b", "a b@c.com", "@c.com", "a@@c.com", "a@.com"] {
            let mut r = row("1");
            r.email = Some(email.into());
            let p = parse(&r).unwrap();
            assert_eq!(
                (p.email, p.email_dropped),
                (None, Some(EmailDropped::Invalid)),
                "{email}"
            );
            assert_eq!(p.name.as_deref(), Some("Ada"));
        }
        let mut r = row("1");
        r.email = Some(format!("{}@example.com", "x".repeat(250)));
        let p = parse(&r).unwrap();
        assert_eq!(
            (p.email, p.email_dropped),
            (None, Some(EmailDropped::TooLong))
        );
        assert_eq!(parse(&row("1")).unwrap().email_dropped, None);
    }

    #[test]
    fn ids_that_are_not_canonical_numbers_are_refused() {
        assert_eq!(parse(&SourceRow::default()), Err(SkipReason::MissingId));
        assert_eq!(parse(&row(" ")), Err(SkipReason::MissingId));
        for bad in [
            "abc",
            "12a",
            "-5",
            "007",
            " 5",
            "1.0",
            "99999999999999999999999",
        ] {
            assert_eq!(parse(&row(bad)), Err(SkipReason::BadId), "{bad}");
        }
    }

    #[test]
    fn bad_fields_are_refused_with_their_reason() {
        let with = |f: &dyn Fn(&mut SourceRow)| {
            let mut r = row("1");
            f(&mut r);
            parse(&r)
        };
        fn long(n: usize) -> String {
            "x".repeat(n)
        }
        assert_eq!(
            with(&|r| r.name = Some(long(MAX_NAME + 1))),
            Err(SkipReason::NameTooLong)
        );
        assert_eq!(
            with(&|r| r.tier = Some(long(MAX_TIER + 1))),
            Err(SkipReason::TierTooLong)
        );
        assert_eq!(
            with(&|r| r.avatar = Some("javascript:alert(1)".into())),
            Err(SkipReason::AvatarNotHttpUrl)
        );
        assert_eq!(
            with(&|r| r.avatar = Some(format!("https://x.com/{}", long(MAX_AVATAR_URL)))),
            Err(SkipReason::AvatarTooLong)
        );
    }
}
