//! Validation of the names users choose: volume names (also the export path and the tree's
//! directory name), share names and LDAP user names. Everything that ends up in a path or an LDAP
//! filter passes through here first, so hostile names (`../x`, `a/b`, NUL, 300 characters) are
//! refused before any file system or directory call.

use thiserror::Error;

/// Longest volume name we accept (Docker's own limit is larger, but ours becomes a path component).
pub const MAX_VOLUME_NAME: usize = 128;
/// Longest share name.
pub const MAX_SHARE_NAME: usize = 64;
/// Longest user name (posixAccount `uid`).
pub const MAX_USER_NAME: usize = 64;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// the name is empty
    #[error("{what} name is empty")]
    Empty { what: &'static str },
    /// the name is too long
    #[error("{what} name is {len} bytes long; the limit is {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// the name holds a character we do not accept
    #[error(
        "{what} name {name:?} contains {found:?}; allowed are letters, digits and {allowed}, starting with a letter or digit"
    )]
    BadChar {
        what: &'static str,
        name: String,
        found: char,
        allowed: &'static str,
    },
}

fn check(
    what: &'static str,
    name: &str,
    max: usize,
    allowed_punct: &'static [char],
    allowed: &'static str,
) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    if name.len() > max {
        return Err(NameError::TooLong {
            what,
            len: name.len(),
            max,
        });
    }
    for (i, c) in name.chars().enumerate() {
        let ok = c.is_ascii_alphanumeric() || (i > 0 && allowed_punct.contains(&c));
        if !ok {
            return Err(NameError::BadChar {
                what,
                name: name.escape_default().to_string(),
                found: c,
                allowed,
            });
        }
    }
    Ok(())
}

/// A volume name: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 128 bytes (Docker's own pattern, bounded).
/// Because the first character cannot be `.`, the names `.` and `..` are impossible.
pub fn validate_volume_name(name: &str) -> Result<(), NameError> {
    check(
        "volume",
        name,
        MAX_VOLUME_NAME,
        &['_', '.', '-'],
        "'_', '.', '-'",
    )
}

/// A share name (a shared tree such as `exchange` or `course-101`): like a volume name, at most 64 bytes.
pub fn validate_share_name(name: &str) -> Result<(), NameError> {
    check(
        "share",
        name,
        MAX_SHARE_NAME,
        &['_', '.', '-'],
        "'_', '.', '-'",
    )
}

/// A top-level directory of a shared tree (a course in the nbgrader exchange): the rules of a
/// share name, so never `.`, `..` or anything with `/`.
pub fn validate_share_dir_name(name: &str) -> Result<(), NameError> {
    check(
        "share directory",
        name,
        MAX_SHARE_NAME,
        &['_', '.', '-'],
        "'_', '.', '-'",
    )
}

/// An LDAP user name (posixAccount `uid`): letters, digits, `_`, `.`, `-`, at most 64 bytes.
pub fn validate_user_name(name: &str) -> Result<(), NameError> {
    check(
        "user",
        name,
        MAX_USER_NAME,
        &['_', '.', '-'],
        "'_', '.', '-'",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_docker_style_names() {
        for n in ["home-alice", "a", "A9", "course_101.v2", &"x".repeat(128)] {
            validate_volume_name(n).unwrap();
        }
    }

    #[test]
    fn refuses_hostile_volume_names() {
        let long = "x".repeat(300);
        for n in [
            "", "../x", "a/b", "/", ".", "..", ".hidden", "a\0b", "-a", "a b", &long, "é",
        ] {
            let err = validate_volume_name(n).unwrap_err();
            assert!(!err.to_string().is_empty(), "{n:?}");
        }
        assert_eq!(
            validate_volume_name(&long).unwrap_err(),
            NameError::TooLong {
                what: "volume",
                len: 300,
                max: 128
            }
        );
        assert!(
            validate_volume_name("a/b")
                .unwrap_err()
                .to_string()
                .contains("'/'")
        );
    }

    #[test]
    fn user_names_cannot_inject_ldap_filters() {
        for n in ["*", "a)(uid=*", "a\\", "(", "bob*"] {
            assert!(validate_user_name(n).is_err(), "{n:?}");
        }
        validate_user_name("alice.smith-2").unwrap();
    }
}
