//! Placeholder: the generic MCP connector is being written.
