//! The web console's files, embedded in the binary and served at `/` on the
//! admin listener.
//!
//! They are the committed build output of `console/` (`console/dist`,
//! rebuilt by `node console/build.mjs`; CI checks that the commit matches
//! a rebuild), so that building sessiond needs no Node. Each file is kept
//! as built and gzipped: a browser that accepts gzip gets the smaller one.
//! Every response carries a strong `ETag` (a hash of the file) and
//! `Cache-Control: no-cache`, so that a browser revalidates and gets
//! `304 Not Modified` until the binary changes; the page carries a
//! Content-Security-Policy that allows only this origin.

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// The page's policy: scripts, styles and calls from this origin only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// One embedded file.
struct Asset {
    /// Its path under `/`.
    path: &'static str,
    content_type: &'static str,
    raw: &'static [u8],
    gzipped: &'static [u8],
}

/// The console's files (`console/dist`).
const ASSETS: [Asset; 3] = [
    Asset {
        path: "/index.html",
        content_type: "text/html; charset=utf-8",
        raw: include_bytes!("../../console/dist/index.html"),
        gzipped: include_bytes!("../../console/dist/index.html.gz"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        raw: include_bytes!("../../console/dist/app.js"),
        gzipped: include_bytes!("../../console/dist/app.js.gz"),
    },
    Asset {
        path: "/app.css",
        content_type: "text/css; charset=utf-8",
        raw: include_bytes!("../../console/dist/app.css"),
        gzipped: include_bytes!("../../console/dist/app.css.gz"),
    },
];

/// Each file's `ETag`, in [`ASSETS`]' order.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let hash = Sha256::digest(asset.raw);
            let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header value")
        })
        .collect()
});

/// The routes of the console's files: `/` (the page) and each file.
pub fn router() -> Router {
    let mut router = Router::new().route("/", get(|headers: HeaderMap| serve(0, headers)));
    for (index, asset) in ASSETS.iter().enumerate() {
        router = router.route(
            asset.path,
            get(move |headers: HeaderMap| serve(index, headers)),
        );
    }
    router
}

/// The file at `index` of [`ASSETS`], as `headers` accept it.
async fn serve(index: usize, headers: HeaderMap) -> Response {
    let asset = &ASSETS[index];
    let etag = ETAGS[index].clone();
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tags| matches(tags, &etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(&headers) {
        (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            asset.gzipped,
        )
            .into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.raw).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if index == 0 {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    response
}

/// Whether an `If-None-Match` list names `etag` (or is `*`).
fn matches(tags: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(tags) = tags.to_str() else {
        return false;
    };
    let etag = etag.to_str().unwrap_or_default();
    tags.split(',')
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

/// Whether `Accept-Encoding` accepts gzip (and does not refuse it with
/// `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.replace(' ', "") == "q=0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_sent_only_to_those_that_accept_it() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            accepts_gzip(&headers)
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("br;q=1.0, gzip;q=0.8"));
        assert!(!with("br"));
        assert!(!with("gzip;q=0"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn a_revalidation_matches_the_files_etag() {
        let etag = ETAGS[1].clone();
        assert!(matches(&etag, &etag));
        assert!(matches(&HeaderValue::from_static("\"x\", *"), &etag));
        assert!(!matches(&HeaderValue::from_static("\"x\""), &etag));
    }

    #[test]
    fn the_bundle_is_under_300_kib_gzipped() {
        let total: usize = ASSETS.iter().map(|asset| asset.gzipped.len()).sum();
        assert!(total < 300 * 1024, "the console is {total} bytes gzipped");
    }

    #[test]
    fn every_file_is_embedded_and_its_gzipped_copy_is_smaller() {
        for asset in &ASSETS {
            assert!(!asset.raw.is_empty(), "{}", asset.path);
            assert!(
                asset.gzipped.starts_with(&[0x1f, 0x8b]),
                "{} is gzip",
                asset.path
            );
            assert!(asset.gzipped.len() < asset.raw.len(), "{}", asset.path);
        }
    }
}
