//! The page's files, built into the binary (nothing is fetched from a CDN
//! or the network), each gzipped once on first use and sent compressed to
//! browsers that take it.

use std::io::Write;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        mime: "text/html; charset=utf-8",
        body: include_bytes!("assets/index.html"),
    },
    Asset {
        name: "app.js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "plot.js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/plot.js"),
    },
    Asset {
        name: "app.css",
        mime: "text/css; charset=utf-8",
        body: include_bytes!("assets/app.css"),
    },
    Asset {
        name: "icon.svg",
        mime: "image/svg+xml",
        body: include_bytes!("assets/icon.svg"),
    },
];

/// Scripts and styles come from this origin only: no inline script can run
/// even if an app's log line were ever rendered as markup.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn gzipped() -> &'static [Vec<u8>] {
    static GZ: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    GZ.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                // Empty on failure: then it is served uncompressed.
                e.write_all(a.body)
                    .and_then(|_| e.finish())
                    .unwrap_or_default()
            })
            .collect()
    })
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let a = &ASSETS[i];
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let gz = &gzipped()[i];
    let common = [
        (header::CONTENT_TYPE, a.mime),
        (header::CACHE_CONTROL, "no-cache"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::VARY, "Accept-Encoding"),
    ];
    if gzip_ok && !gz.is_empty() {
        (common, [(header::CONTENT_ENCODING, "gzip")], gz.clone()).into_response()
    } else {
        (common, a.body).into_response()
    }
}

pub(super) async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

pub(super) async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    if name == "index.html" {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    serve(&name, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_compresses_and_the_page_is_small() {
        let total: usize = gzipped().iter().map(Vec::len).sum();
        assert!(gzipped().iter().all(|g| !g.is_empty()));
        assert!(total < 200 * 1024, "first load {total} bytes compressed");
        let html = std::str::from_utf8(ASSETS[0].body).unwrap();
        for a in &ASSETS[1..] {
            assert!(
                html.contains(&format!("/assets/{}", a.name)),
                "{} is not used",
                a.name
            );
        }
    }
}
