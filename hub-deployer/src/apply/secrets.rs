//! Values of the secrets the CLI creates: random ones, and ones the admin hands over from a file
//! or stdin. Values only pass through here on their way into a Docker secret; they are never
//! logged, printed or written anywhere else.

use std::io::Read;

use anyhow::{Context, bail};
use rand::RngCore;

use crate::plan::SecretInput;

/// Docker refuses secrets above 500 KiB; an LDAP password is far smaller.
pub const MAX_SECRET_BYTES: usize = 500 * 1024;

/// `bytes` random bytes from rand's cryptographic generator (seeded by the OS), as lower-case hex (what `JUPYTERHUB_CRYPT_KEY`,
/// `JPY_COOKIE_SECRET` and nfsd's bearer token accept).
pub fn generate_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Read a secret the admin gives: the content of a file or of stdin, without one trailing
/// newline (`echo pw > file` must give `pw`). Empty values and values over
/// [`MAX_SECRET_BYTES`] are refused.
pub fn read_input(input: &SecretInput, stdin: &mut dyn Read) -> anyhow::Result<Vec<u8>> {
    let mut value = Vec::new();
    let limit = MAX_SECRET_BYTES as u64 + 1;
    match input {
        SecretInput::File(path) => std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut value))
            .with_context(|| format!("cannot read the secret file {}", path.display()))?,
        SecretInput::Stdin => stdin
            .take(limit)
            .read_to_end(&mut value)
            .context("cannot read the secret from stdin")?,
    };
    if value.len() > MAX_SECRET_BYTES {
        bail!("the secret is larger than {MAX_SECRET_BYTES} bytes");
    }
    if value.last() == Some(&b'\n') {
        value.pop();
        if value.last() == Some(&b'\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        bail!("the secret is empty");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_are_hex_of_the_size_and_differ() {
        let a = generate_hex(32);
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(a, generate_hex(32));
    }

    #[test]
    fn inputs_lose_one_trailing_newline_only() {
        let mut stdin: &[u8] = b"pw with space \n\n";
        assert_eq!(
            read_input(&SecretInput::Stdin, &mut stdin).unwrap(),
            b"pw with space \n"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "secret\r\n").unwrap();
        let mut none: &[u8] = b"";
        assert_eq!(
            read_input(&SecretInput::File(f.clone()), &mut none).unwrap(),
            b"secret"
        );
    }

    #[test]
    fn empty_missing_and_huge_inputs_are_refused() {
        let mut empty: &[u8] = b"\n";
        read_input(&SecretInput::Stdin, &mut empty).unwrap_err();
        let mut none: &[u8] = b"";
        let e = read_input(&SecretInput::File("/nonexistent/pw".into()), &mut none).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/pw"), "{e}");
        let big = vec![b'x'; MAX_SECRET_BYTES + 1];
        let mut big: &[u8] = &big;
        read_input(&SecretInput::Stdin, &mut big).unwrap_err();
    }
}
