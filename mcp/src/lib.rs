//! VitaSync's MCP server (rmcp): tools and resources over the engine's services and the
//! materialised analytics, scoped to one workspace by the API key it runs with.
//!
//! What lives where: nothing yet — the server arrives with the MCP work.
