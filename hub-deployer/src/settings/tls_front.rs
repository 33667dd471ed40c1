//! The hub's TLS front: the nginx configuration that serves HTTPS on the hub's public port
//! when `tls.mode` is not `off`.
//!
//! Why a front, and why nginx: configurable-http-proxy can terminate TLS itself, but plain HTTP
//! sent to its HTTPS port gets the connection closed without a word (CHP 5.3.0: curl says
//! "Empty reply from server", a browser "ERR_EMPTY_RESPONSE"). A student who types
//! `http://hub:8000/` must instead land on the login page. nginx answers exactly that case with
//! its own status 497, which [`render`] turns into a 301 to the same host, port and path over
//! HTTPS. It passes the client's address on (`X-Real-IP`, `X-Forwarded-For`) and says the
//! request came over HTTPS (`X-Forwarded-Proto`); the proxy behind it runs with
//! `--no-x-forward` and hands those headers to JupyterHub and the notebooks unchanged.
//!
//! Layout inside the hub container, all fixed:
//! - nginx listens on [`HUB_CONTAINER_PORT`] (published as `cluster.hub_port`) with the
//!   certificate and key of the hub's TLS secrets;
//! - configurable-http-proxy listens on `127.0.0.1:`[`PROXY_BEHIND_FRONT_PORT`] in plain HTTP,
//!   so nothing outside the container reaches it but through the front;
//! - with `cluster.hub_redirect_port`, nginx also listens on [`HUB_REDIRECT_CONTAINER_PORT`] and
//!   redirects every request there to `https://<host>:<hub_port>/...`.
//!
//! The generated `jupyterhub_config.py` writes the text to a file and runs
//! `nginx -c <file> -g 'daemon off;'` as a hub-managed service (JupyterHub starts it, and
//! starts it again if it exits).

use super::{HUB_CONTAINER_PORT, HUB_REDIRECT_CONTAINER_PORT};

/// Where configurable-http-proxy listens, on the container's loopback only, behind the front.
/// (8001 is the proxy's API, 8081 the hub's.)
pub const PROXY_BEHIND_FRONT_PORT: u16 = 8010;

/// What the front needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFront {
    /// The certificate chain inside the hub container.
    pub cert_file: String,
    /// Its key inside the hub container.
    pub key_file: String,
    /// The public HTTPS port (`cluster.hub_port`) the redirect port sends browsers to; `None`:
    /// no redirect port.
    pub redirect_to: Option<u16>,
}

/// The whole nginx configuration of the front.
///
/// The paths come from fixed names (`/run/secrets/...`) and the ports are numbers, so nothing a
/// user writes in `swarmhub.toml` can reach the text unquoted; [`render`] still refuses a path
/// that would end a directive.
pub fn render(front: &TlsFront) -> String {
    for path in [&front.cert_file, &front.key_file] {
        assert!(
            path.starts_with('/') && !path.contains([';', '{', '}', '"', '\'', ' ', '\n', '$']),
            "the TLS front's file paths are fixed names under /run/secrets: {path:?}"
        );
    }
    let mut s = format!(
        "\
# swarmhub's TLS front for the hub, written by the generated jupyterhub_config.py.
# HTTPS on :{public}, proxied to configurable-http-proxy on 127.0.0.1:{proxy}; plain HTTP sent
# to the HTTPS port (nginx's status 497) is redirected to the same URL over HTTPS.
worker_processes auto;
pid /run/swarmhub-tls-front.pid;
error_log stderr warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    server_tokens off;
    # a WebSocket upgrade is passed on; anything else closes the upstream connection
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    server {{
        listen {public} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:swarmhub_tls:10m;
        # plain HTTP on this port (nginx's 497): the same host, port and path over HTTPS
        error_page 497 = @plain_http;
        # uploads go through unbuffered; JupyterLab sends big files in chunks
        client_max_body_size 0;

        location @plain_http {{
            # without a Host header (HTTP/1.0) there is no URL to send the browser to
            if ($http_host = \"\") {{
                return 400 \"This is an HTTPS port: send the request over https://\\n\";
            }}
            return 301 https://$http_host$request_uri;
        }}

        location / {{
            proxy_pass http://127.0.0.1:{proxy};
            proxy_http_version 1.1;
            # the Host the browser sent, port included: Jupyter compares it with Origin
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Scheme https;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_buffering off;
            proxy_request_buffering off;
            # kernels' WebSockets stay open through long quiet stretches
            proxy_read_timeout 1d;
            proxy_send_timeout 1d;
        }}
    }}
",
        public = HUB_CONTAINER_PORT,
        proxy = PROXY_BEHIND_FRONT_PORT,
        cert = front.cert_file,
        key = front.key_file,
    );
    if let Some(to) = front.redirect_to {
        let port = if to == 443 {
            String::new()
        } else {
            format!(":{to}")
        };
        s.push_str(&format!(
            "
    # cluster.hub_redirect_port: every plain HTTP request goes to the HTTPS URL
    server {{
        listen {HUB_REDIRECT_CONTAINER_PORT};
        location / {{
            return 301 https://$host{port}$request_uri;
        }}
    }}
"
        ));
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn front(redirect_to: Option<u16>) -> TlsFront {
        TlsFront {
            cert_file: "/run/secrets/swarmhub-hub-tls.crt".into(),
            key_file: "/run/secrets/swarmhub-hub-tls.key".into(),
            redirect_to,
        }
    }

    /// The directives of `text` as trimmed lines, comments left out.
    fn lines(text: &str) -> Vec<&str> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }

    #[test]
    fn https_on_the_public_port_and_plain_http_there_redirected() {
        let text = render(&front(None));
        let l = lines(&text);
        for want in [
            "listen 8000 ssl;",
            "ssl_certificate /run/secrets/swarmhub-hub-tls.crt;",
            "ssl_certificate_key /run/secrets/swarmhub-hub-tls.key;",
            "error_page 497 = @plain_http;",
            "return 301 https://$http_host$request_uri;",
            "return 400 \"This is an HTTPS port: send the request over https://\\n\";",
            "proxy_pass http://127.0.0.1:8010;",
            "proxy_set_header Host $http_host;",
            "proxy_set_header X-Real-IP $remote_addr;",
            "proxy_set_header X-Forwarded-Proto https;",
            "proxy_set_header Upgrade $http_upgrade;",
            "proxy_set_header Connection $connection_upgrade;",
            "error_log stderr warn;",
        ] {
            assert!(l.contains(&want), "{want:?} missing from:\n{text}");
        }
        // no second server without a redirect port
        assert_eq!(l.iter().filter(|l| l.starts_with("listen")).count(), 1);
        // braces balance: nginx would refuse the file otherwise
        assert_eq!(
            text.matches('{').count(),
            text.matches('}').count(),
            "{text}"
        );
    }

    #[test]
    fn the_redirect_port_names_the_public_https_port_except_443() {
        let text = render(&front(Some(8443)));
        let l = lines(&text);
        assert!(l.contains(&"listen 8080;"), "{text}");
        assert!(
            l.contains(&"return 301 https://$host:8443$request_uri;"),
            "{text}"
        );
        assert_eq!(
            text.matches('{').count(),
            text.matches('}').count(),
            "{text}"
        );
        let text = render(&front(Some(443)));
        assert!(
            lines(&text).contains(&"return 301 https://$host$request_uri;"),
            "{text}"
        );
    }

    #[test]
    #[should_panic(expected = "fixed names")]
    fn a_path_that_would_end_a_directive_is_refused() {
        let mut f = front(None);
        f.key_file = "/run/secrets/x; include /etc/passwd".into();
        render(&f);
    }
}
