//! Mount paths as MOUNT sees them: `/<volume>/<secret>` (a capability mount; the secret is the
//! view's, given out only by nfsd's control API) or a bare `/<volume>`. Parsed in one place for
//! nfsd (which checks them) and the plugin (which must never show the secret: errors and
//! `docker volume inspect` show [`public_export`]).

/// A MNT path split into the volume name and the secret (absent in a bare `/<volume>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPath<'a> {
    pub name: &'a str,
    pub secret: Option<&'a str>,
}

impl<'a> MountPath<'a> {
    /// `/<name>` or `/<name>/<secret>`, surrounding slashes ignored; anything else is `None`.
    pub fn parse(path: &'a str) -> Option<Self> {
        let trimmed = path.trim_matches('/');
        let mut parts = trimmed.split('/');
        let name = parts.next().filter(|n| !n.is_empty())?;
        let secret = parts.next();
        if parts.next().is_some() || secret.is_some_and(str::is_empty) {
            return None;
        }
        Some(Self { name, secret })
    }
}

/// The part of a mount path that is safe to show to any docker user or in logs: `/<name>`.
pub fn public_export(export: &str) -> String {
    match MountPath::parse(export) {
        Some(p) => format!("/{}", p.name),
        None => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_name_and_secret() {
        assert_eq!(
            MountPath::parse("/home-alice"),
            Some(MountPath {
                name: "home-alice",
                secret: None
            })
        );
        assert_eq!(
            MountPath::parse("/home-alice/abc/"),
            Some(MountPath {
                name: "home-alice",
                secret: Some("abc")
            })
        );
        for bad in ["", "/", "/a/b/c", "//", "/a//b"] {
            assert_eq!(MountPath::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_public_form_hides_the_secret() {
        assert_eq!(public_export("/home-alice/0123abcd"), "/home-alice");
        assert_eq!(public_export("/home-alice"), "/home-alice");
        assert_eq!(public_export("/a/b/c"), "/");
    }
}
