//! Answers every request with `200 Hello, world!`: the `wasi:http`
//! hello-world that `wasmtime serve` runs in the peer benchmark.

use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Hello;

wasip2::http::proxy::export!(Hello);

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let headers = Fields::new();
        headers
            .set("content-type", &[b"text/plain".to_vec()])
            .expect("a valid header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("the body, once");
        ResponseOutparam::set(out, Ok(response));
        let mut stream = body.write().expect("the stream, once");
        stream.write_all(b"Hello, world!\n").expect("written");
        stream.flush().expect("flushed");
        drop(stream);
        OutgoingBody::finish(body, None).expect("finished");
    }
}
