//! Guardrails through a real MCP client, one file per part: validating code and its telemetry.

mod validate;
