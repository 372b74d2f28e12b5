//! The WIT `connector` interface for every [`Vendor`]: each export runs one [`Connector`] with the
//! real host ([`WitHost`]) and `wasi:http` ([`WasiHttpClient`]), in the fresh instance the host
//! created for the call.

use crate::bindings::exports::claribi::data_source::connector::Guest;
use crate::host::WitHost;
use crate::types::{Account, AuthorizationRequest, ConnectorInfo, Error, ToolListing, ToolResult};
use crate::{Connector, Vendor};
use mcp_client::wasi_http::WasiHttpClient;

fn with_connector<V: Vendor, T>(
    f: impl FnOnce(&Connector<'_, V>) -> Result<T, Error>,
) -> Result<T, Error> {
    let http = WasiHttpClient::default();
    let connector = Connector::<V>::new(&WitHost, &http);
    f(&connector)
}

impl<V: Vendor> Guest for V {
    fn describe() -> ConnectorInfo {
        V::info()
    }

    fn begin_authorization(redirect_uri: String) -> Result<AuthorizationRequest, Error> {
        with_connector::<V, _>(|c| c.begin_authorization(&redirect_uri))
    }

    fn complete_authorization(callback_url: String) -> Result<Account, Error> {
        with_connector::<V, _>(|c| c.complete_authorization(&callback_url))
    }

    fn check_connection() -> Result<Account, Error> {
        with_connector::<V, _>(|c| c.check_connection())
    }

    fn list_tools() -> Result<ToolListing, Error> {
        with_connector::<V, _>(|c| c.list_tools())
    }

    fn call_tool(name: String, arguments: String) -> Result<ToolResult, Error> {
        with_connector::<V, _>(|c| c.call_tool(&name, &arguments))
    }

    fn disconnect() -> Result<(), Error> {
        with_connector::<V, _>(|c| c.disconnect())
    }
}
