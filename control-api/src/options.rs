//! The volume options users write, in one parser: `docker volume create -o k=v`, `volume-opt=k=v`
//! in `--mount`, and SwarmSpawner's `DriverConfig` options all arrive as a string map. Known keys:
//! `user`, `share`, `size`, `readonly`, `layout`. Unknown keys and bad values are errors that say what is
//! allowed, so a typo never silently creates a different volume.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::names::{NameError, validate_share_name, validate_user_name};

/// Keys a volume option map may hold.
pub const KNOWN_KEYS: &[&str] = &["user", "share", "size", "readonly", "layout"];

/// A validated set of volume options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeOptions {
    /// LDAP user name whose identity the volume acts as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Name of a shared tree; the volume is then that user's view of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    /// Quota in bytes. On a home volume it limits the tree. On a share view (`share=`) it
    /// limits the bytes that the view's user owns in the shared tree (files are charged to
    /// their owner on disk, as kernel quotas do), so every user has their own share of, say, the
    /// nbgrader exchange and one cannot fill it for the others; views without a size are bounded
    /// by the disk only. Writes past it fail with `EDQUOT`; `df` shows it as the size. Asking
    /// for an existing volume with another size changes its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Serve the volume read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub readonly: bool,
    /// How a home volume is used: `layout=home` says it is mounted as the user's whole home
    /// directory. A home volume made before layouts existed (swarmhub 0.x mounted it at
    /// `~/work`) holds the user's files at its top; the first ensure with `layout=home` moves
    /// them into `work/` inside it, so they stay at `~/work`. Without the option nfsd keeps
    /// whatever layout the volume has. Share views have no layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
}

/// The layout of a home volume's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The tree is the user's home directory; files of a 0.x volume are under `work/`.
    Home,
}

impl Layout {
    /// The option value.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Home => "home",
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = OptionError;
    fn from_str(value: &str) -> Result<Self, OptionError> {
        match value {
            "home" => Ok(Layout::Home),
            _ => Err(OptionError::BadLayout {
                value: value.to_string(),
            }),
        }
    }
}

/// Why an option map was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OptionError {
    /// a key we do not know
    #[error("unknown volume option {key:?}; known options are user, share, size, readonly, layout")]
    UnknownKey { key: String },
    /// a size that does not parse
    #[error(
        "volume option size={value:?} is not a size; write bytes (1073741824) or a number with K, M, G or T (10G)"
    )]
    BadSize { value: String },
    /// a boolean that does not parse
    #[error("volume option readonly={value:?} is not a boolean; write true or false")]
    BadBool { value: String },
    /// a layout that does not parse
    #[error(
        "volume option layout={value:?} is not a layout; write layout=home (the volume is the user's whole home directory)"
    )]
    BadLayout { value: String },
    /// `layout` on a share view
    #[error(
        "volume option layout= applies to home volumes only; share={share:?} is a view of a shared tree"
    )]
    LayoutOnShare { share: String },
    /// `share` without `user`
    #[error(
        "volume option share={share:?} needs user=<ldap name> too: a shared tree is seen through one user's identity"
    )]
    ShareWithoutUser { share: String },
    /// neither `user` nor explicit ids
    #[error("volume options need user=<ldap name> (for example -o user=alice)")]
    MissingUser,
    /// a bad user or share name
    #[error("volume option {key}: {source}")]
    BadName {
        key: &'static str,
        #[source]
        source: NameError,
    },
}

impl VolumeOptions {
    /// Parses a Docker-style option map. An empty map is valid here (the caller decides whether a
    /// user is required, see [`VolumeOptions::require_user`]).
    pub fn from_map<'a, I>(map: I) -> Result<Self, OptionError>
    where
        I: IntoIterator<Item = (&'a String, &'a String)>,
    {
        let mut opts = VolumeOptions::default();
        for (key, value) in map {
            match key.as_str() {
                "user" => {
                    validate_user_name(value).map_err(|source| OptionError::BadName {
                        key: "user",
                        source,
                    })?;
                    opts.user = Some(value.clone());
                }
                "share" => {
                    validate_share_name(value).map_err(|source| OptionError::BadName {
                        key: "share",
                        source,
                    })?;
                    opts.share = Some(value.clone());
                }
                "size" => opts.size = Some(parse_size(value)?),
                "readonly" => opts.readonly = parse_bool(value)?,
                "layout" => opts.layout = Some(value.parse()?),
                _ => return Err(OptionError::UnknownKey { key: key.clone() }),
            }
        }
        opts.check()?;
        Ok(opts)
    }

    /// Consistency rules that hold whatever way the options arrived.
    pub fn check(&self) -> Result<(), OptionError> {
        if let Some(user) = &self.user {
            validate_user_name(user).map_err(|source| OptionError::BadName {
                key: "user",
                source,
            })?;
        }
        if let Some(share) = &self.share {
            validate_share_name(share).map_err(|source| OptionError::BadName {
                key: "share",
                source,
            })?;
            if self.user.is_none() {
                return Err(OptionError::ShareWithoutUser {
                    share: share.clone(),
                });
            }
            if self.layout.is_some() {
                return Err(OptionError::LayoutOnShare {
                    share: share.clone(),
                });
            }
        }
        Ok(())
    }

    /// Errors unless a user is named (what the plugin requires of every volume).
    pub fn require_user(&self) -> Result<&str, OptionError> {
        self.user.as_deref().ok_or(OptionError::MissingUser)
    }

    /// The options as a Docker-style map (the inverse of [`VolumeOptions::from_map`]).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        if let Some(u) = &self.user {
            map.insert("user".into(), u.clone());
        }
        if let Some(s) = &self.share {
            map.insert("share".into(), s.clone());
        }
        if let Some(s) = self.size {
            map.insert("size".into(), s.to_string());
        }
        if self.readonly {
            map.insert("readonly".into(), "true".into());
        }
        if let Some(l) = self.layout {
            map.insert("layout".into(), l.as_str().into());
        }
        map
    }
}

/// Parses `1073741824`, `512M`, `10G`, `1T`, `10GiB`, `10g` (binary multiples).
pub fn parse_size(value: &str) -> Result<u64, OptionError> {
    let bad = || OptionError::BadSize {
        value: value.to_string(),
    };
    let v = value.trim();
    let digits_end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    if digits_end == 0 {
        return Err(bad());
    }
    let number: u64 = v[..digits_end].parse().map_err(|_| bad())?;
    let shift = match v[digits_end..].to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(bad()),
    };
    let size = number.checked_mul(1u64 << shift).ok_or_else(bad)?;
    if size == 0 {
        return Err(bad());
    }
    Ok(size)
}

fn parse_bool(value: &str) -> Result<bool, OptionError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(OptionError::BadBool {
            value: value.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_known_options() {
        let o = VolumeOptions::from_map(&map(&[
            ("user", "alice"),
            ("share", "exchange"),
            ("size", "10G"),
            ("readonly", "true"),
        ]))
        .unwrap();
        let home = VolumeOptions::from_map(&map(&[("user", "alice"), ("layout", "home")])).unwrap();
        assert_eq!(home.layout, Some(Layout::Home));
        assert_eq!(VolumeOptions::from_map(&home.to_map()).unwrap(), home);
        assert_eq!(o.user.as_deref(), Some("alice"));
        assert_eq!(o.share.as_deref(), Some("exchange"));
        assert_eq!(o.size, Some(10 << 30));
        assert!(o.readonly);
        assert_eq!(VolumeOptions::from_map(&o.to_map()).unwrap(), o);
    }

    #[test]
    fn unknown_key_names_the_key_and_the_known_ones() {
        let err = VolumeOptions::from_map(&map(&[("user", "a"), ("sise", "1G")])).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("\"sise\"") && msg.contains("user, share, size, readonly, layout"),
            "{msg}"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(matches!(
            VolumeOptions::from_map(&map(&[("size", "ten")])),
            Err(OptionError::BadSize { .. })
        ));
        assert!(matches!(
            VolumeOptions::from_map(&map(&[("size", "0")])),
            Err(OptionError::BadSize { .. })
        ));
        assert!(matches!(
            VolumeOptions::from_map(&map(&[("size", "99999999999T")])),
            Err(OptionError::BadSize { .. })
        ));
        assert!(matches!(
            VolumeOptions::from_map(&map(&[("readonly", "maybe")])),
            Err(OptionError::BadBool { .. })
        ));
        assert!(matches!(
            VolumeOptions::from_map(&map(&[("share", "exchange")])),
            Err(OptionError::ShareWithoutUser { .. })
        ));
        assert!(matches!(
            VolumeOptions::from_map(&map(&[("user", "a"), ("layout", "work")])),
            Err(OptionError::BadLayout { .. })
        ));
        let err = VolumeOptions::from_map(&map(&[
            ("user", "a"),
            ("share", "exchange"),
            ("layout", "home"),
        ]))
        .unwrap_err();
        assert!(matches!(err, OptionError::LayoutOnShare { .. }), "{err}");
        assert!(matches!(
            VolumeOptions::from_map(&map(&[("user", "../root")])),
            Err(OptionError::BadName { key: "user", .. })
        ));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1073741824").unwrap(), 1 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("4k").unwrap(), 4096);
        parse_size("").unwrap_err();
        parse_size("G").unwrap_err();
        parse_size("-1").unwrap_err();
    }
}
