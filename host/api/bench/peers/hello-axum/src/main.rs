//! `GET /` answers `Hello, world!`: the native peer of the benchmark.
//! Usage: `hello-axum ADDR`.

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18490".into());
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, world!\n" }));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| panic!("binding {addr}: {e}"));
    axum::serve(listener, app).await.expect("serving");
}
