//! The WIT bindings of the `claribi:data-source/data-source` world (`wit/data-source.wit`),
//! generated once for every connector.
//!
//! A connector never implements the generated `Guest` trait itself: the SDK implements it for every
//! [`Vendor`](crate::Vendor), and the connector exports its vendor type with the `export_connector!`
//! macro generated here (see the crate documentation).

wit_bindgen::generate!({
    path: "../../wit",
    world: "claribi:data-source/data-source",
    additional_derives: [PartialEq],
    // Reuse the `wasip2` crate's types for the wasi imports, so that `mcp-client`'s `wasi:http`
    // code and these bindings share one set of resource types.
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
    // The export macro is used by the connector crates, not here.
    pub_export_macro: true,
    export_macro_name: "export_connector",
    default_bindings_module: "$crate::bindings",
});
