//! Values that can only be constructed valid: parse at the edge, trust inside.
use super::error::DomainError;

/// PostgreSQL cannot store U+0000 in text; SQLite can. Both refuse it here, the same way,
/// so a NUL never reaches (and fails) a batch that carries other users' messages.
fn refuse_nul(field: &'static str, raw: &str) -> Result<(), DomainError> {
    if raw.contains('\0') {
        Err(DomainError::Unstorable(field))
    } else {
        Ok(())
    }
}

/// A syntactically plausible, lower-cased email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && match email.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }
                None => false,
            };
        if valid {
            Ok(Email(email))
        } else {
            Err(DomainError::InvalidEmail)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

/// A password long enough to accept (8..=1024 characters).
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw.chars().count() {
            0..8 => Err(DomainError::WeakPassword),
            // argon2 accepts long inputs, but hashing megabytes on request is a DoS lever.
            1025.. => Err(DomainError::Unprocessable(
                "password must be at most 1024 characters".into(),
            )),
            _ => Ok(Password(raw.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name: trimmed, 1..=100 characters.
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        refuse_nul("display_name", raw)?;
        let name = raw.trim();
        match name.chars().count() {
            0 => Err(DomainError::Unprocessable(
                "display_name must not be empty".into(),
            )),
            101.. => Err(DomainError::Unprocessable(
                "display_name must be at most 100 characters".into(),
            )),
            _ => Ok(DisplayName(name.to_owned())),
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Message content: not blank, at most `max_bytes` of UTF-8. Stored exactly as sent.
#[derive(Debug, Clone)]
pub struct Content(String);

impl Content {
    pub fn parse(raw: String, max_bytes: usize) -> Result<Self, DomainError> {
        refuse_nul("content", &raw)?;
        if raw.trim().is_empty() {
            Err(DomainError::EmptyContent)
        } else if raw.len() > max_bytes {
            Err(DomainError::ContentTooLong(max_bytes))
        } else {
            Ok(Content(raw))
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }

    /// The content of an end-to-end encrypted message: empty by design (its text is in
    /// its envelopes), so previews and search find nothing of it.
    pub fn encrypted() -> Self {
        Content(String::new())
    }
}

/// A group's name: trimmed, 1..=100 characters.
#[derive(Debug, Clone)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        refuse_nul("name", raw)?;
        let name = raw.trim();
        match name.chars().count() {
            0 => Err(DomainError::InvalidGroup("name must not be empty".into())),
            101.. => Err(DomainError::InvalidGroup(
                "name must be at most 100 characters".into(),
            )),
            _ => Ok(GroupName(name.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A group's description: at most 1,000 characters, kept as written.
#[derive(Debug, Clone)]
pub struct GroupDescription(String);

impl GroupDescription {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        refuse_nul("description", raw)?;
        if raw.chars().count() > 1_000 {
            Err(DomainError::InvalidGroup(
                "description must be at most 1000 characters".into(),
            ))
        } else {
            Ok(GroupDescription(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client-chosen idempotency key for a send: 1..=64 visible characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let valid =
            !raw.is_empty() && raw.len() <= 64 && !raw.chars().any(|c| c.is_control() || c.is_whitespace());
        if valid {
            Ok(ClientMsgId(raw.to_owned()))
        } else {
            Err(DomainError::InvalidInput(
                "client_msg_id must be 1 to 64 characters without spaces".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_lowercased_and_checked() {
        assert_eq!(
            Email::parse(" Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in ["", "ann", "ann@", "@x.com", "a b@x.com", "ann@x", "a@b@c.com"] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn content_limits_are_in_bytes() {
        assert!(matches!(
            Content::parse("  ".into(), 10),
            Err(DomainError::EmptyContent)
        ));
        assert!(Content::parse("é".repeat(5), 10).is_ok());
        assert!(matches!(
            Content::parse("é".repeat(6), 10),
            Err(DomainError::ContentTooLong(10))
        ));
    }

    #[test]
    fn nul_is_refused_wherever_text_is_stored() {
        assert!(matches!(
            Content::parse("a\0b".into(), 100),
            Err(DomainError::Unstorable("content"))
        ));
        assert!(matches!(
            DisplayName::parse("an\0n"),
            Err(DomainError::Unstorable("display_name"))
        ));
        assert!(Email::parse("a\0@x.com").is_err());
        assert!(GroupName::parse("t\0").is_err());
        assert!(GroupDescription::parse("\0").is_err());
    }

    #[test]
    fn client_msg_id_is_bounded() {
        assert!(ClientMsgId::parse("0b6f3c1e-5d7a-4f5e-9a51-2f8f0c7d9e10").is_ok());
        assert!(ClientMsgId::parse("").is_err());
        assert!(ClientMsgId::parse(&"x".repeat(65)).is_err());
        assert!(ClientMsgId::parse("a b").is_err());
    }

    #[test]
    fn group_names_and_descriptions_are_bounded() {
        assert_eq!(GroupName::parse("  Team  ").unwrap().as_str(), "Team");
        assert!(GroupName::parse("   ").is_err());
        assert!(
            GroupName::parse(&"é".repeat(100)).is_ok(),
            "characters, not bytes"
        );
        assert!(GroupName::parse(&"x".repeat(101)).is_err());
        assert!(GroupDescription::parse(&"x".repeat(1_000)).is_ok());
        assert!(GroupDescription::parse(&"x".repeat(1_001)).is_err());
    }

    #[test]
    fn password_needs_eight_chars() {
        assert!(matches!(
            Password::parse("1234567"),
            Err(DomainError::WeakPassword)
        ));
        assert!(Password::parse("12345678").is_ok());
    }
}
