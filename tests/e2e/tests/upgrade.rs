//! Connectors built for `claribi:data-source@0.1.0` were handed real credentials; a 0.2.0 host refuses
//! to load them, and a data directory an older host left behind says exactly what to run:
//! `claribi-host upgrade NAME --plugin NEW`, which keeps an API key (now bound to the endpoint and
//! the new build's key header) and drops what the old contract let a connector store.

use e2e::claribi_host::errors::HostError;
use e2e::claribi_host::service::builtin;
use e2e::claribi_host::vault::sealing::MasterKeys;
use e2e::claribi_host::vault::store::{AuthMethod, ConnectionRecord, Status, StoredSecret};
use e2e::{json_of, Fixture};
use close_standin::ResponseMode;

const LEGACY: &str = env!("LEGACY_PLUGIN_WASM");

fn legacy() -> Vec<u8> {
    std::fs::read(LEGACY).unwrap_or_else(|e| panic!("cannot read {LEGACY}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_built_for_the_old_contract_is_refused_with_what_to_do() {
    let f = Fixture::start(ResponseMode::Json).await;
    let mut req = f.request("old", f.standin.api_key(), "mcp.read");
    req.plugin = legacy();
    let err = f.host.connect(req).await.unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.kind(), "old-contract", "{msg}");
    assert!(msg.contains("claribi:data-source@0.1.0") && msg.contains("handed credentials to connectors"), "{msg}");
    assert!(msg.contains("claribi-host upgrade"), "{msg}");
    assert!(!msg.contains('\n'));
    assert!(f.host.connections().unwrap().is_empty(), "nothing was kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_directory_of_an_older_host_is_upgraded_and_keeps_its_api_key() {
    let f = Fixture::start(ResponseMode::Json).await;
    // What an older host left: the connection pinned to a 0.1.0 build, its key sealed in format 1.
    let bytes = legacy();
    let digest = e2e::claribi_host::sandbox::runtime::digest(&bytes);
    let plugins = f.dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join(format!("{digest}.wasm")), &bytes).unwrap();
    let record = ConnectionRecord {
        id: "conn_from_an_older_host".into(),
        name: "close".into(),
        plugin_digest: digest,
        connector_id: "close".into(),
        connector_name: "Close CRM".into(),
        endpoint: f.standin.url(),
        auth_method: AuthMethod::ApiKey,
        scopes: vec!["mcp.read".into()],
        options: vec![],
        policy: Default::default(),
        oauth: Default::default(),
        api_key_header: None,
        account: None,
        granted_scopes: vec!["mcp.read".into()],
        warnings: vec![],
        status: Status::Ready,
        last_error: None,
        created_at: 0,
        updated_at: 0,
    };
    f.host.store().insert_connection(&record).unwrap();
    let keys = MasterKeys::load_or_create(f.dir.path()).unwrap();
    let sealed = keys.seal(&record.id, "api-key", f.standin.api_key().as_bytes()).unwrap();
    let db = rusqlite::Connection::open(f.dir.path().join("claribi.db")).unwrap();
    db.execute(
        "INSERT INTO secrets (connection_id, name, key_id, nonce, ciphertext, updated_at) VALUES (?1, 'api-key', ?2, ?3, ?4, 0)",
        rusqlite::params![record.id, sealed.key_id, sealed.nonce, sealed.ciphertext],
    )
    .unwrap();
    drop(db);

    // A call says exactly what to run; the old key is never handed to anyone meanwhile.
    let err = f.host.call_tool("close", "org_info", "{}").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HostError::Usage(_)), "{err:?}");
    assert!(msg.contains("claribi-host upgrade close --plugin builtin:close") && msg.contains("the API key is kept"), "{msg}");
    let bindings = f.host.secret_bindings(&f.host.connection("close").unwrap()).unwrap();
    assert_eq!(bindings[0].kind, "legacy", "{bindings:?}");

    // The upgrade moves it to the current build; the key now goes only to the endpoint's header.
    let out = f.host.upgrade("close", builtin::CLOSE, None).await.expect("the upgrade works with the kept key");
    assert!(out.account.as_deref().unwrap_or("").contains(&f.standin.dataset().organization.name), "{out:?}");
    let key = out.secrets.iter().find(|s| s.name == "api-key").expect("the key");
    assert_eq!(key.kind, "api-key");
    assert_eq!(key.goes_to, vec![format!("GET,POST,DELETE {} (MCP endpoint), header close-api-key", f.standin.url())]);
    let id = f.host.connection("close").unwrap().id;
    assert!(matches!(f.host.store().secret(&keys, &id, "api-key").unwrap(), Some(StoredSecret::Credential(_))));
    let v = json_of(&f.host.call_tool("close", "org_info", "{}").await.unwrap());
    assert_eq!(v["organization"]["id"], f.standin.dataset().organization.id);

    // A build of another connector is refused.
    let err = f.host.upgrade("close", builtin::MCP, None).await.unwrap_err();
    assert!(err.to_string().contains("runs the `close` connector"), "{err}");
}
