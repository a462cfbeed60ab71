//! The agent's direct methods, as Azure's edgeAgent answers them: `ping`, `RestartModule`
//! (`{"schemaVersion": "1.0", "id": "<module>"}`) and `GetModuleLogs`
//! (`{"schemaVersion": "1.0", "items": [{"id": "<module>", "filter": {"tail": N}}]}`).

use std::sync::Arc;

use outpost_core::ModuleId;
use serde_json::{Value, json};

use crate::daemon::Agent;
use crate::logs::reader::{self, Query};

/// Lines returned by `GetModuleLogs` when no tail is asked for.
const DEFAULT_TAIL: usize = 500;

/// A method's status and JSON payload.
pub type Answer = (i32, Value);

fn error(status: i32, message: impl Into<String>) -> Answer {
    (status, json!({"message": message.into()}))
}

fn module_id(payload: &Value, field: &str) -> Result<ModuleId, Answer> {
    let id = payload
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| error(400, format!("payload needs a string {field:?}")))?;
    ModuleId::new(id).map_err(|e| error(400, e.to_string()))
}

/// Answers `method` with `payload`.
pub async fn handle(agent: &Arc<Agent>, method: &str, payload: &Value) -> Answer {
    match method {
        "ping" => (200, Value::Null),
        "RestartModule" => {
            let module = match module_id(payload, "id") {
                Ok(module) => module,
                Err(answer) => return answer,
            };
            if !agent.has_module(&module) {
                return error(404, format!("module {module} is not in the deployment"));
            }
            match agent.restart(&module).await {
                Ok(()) => (200, Value::Null),
                Err(e) => error(500, e.to_string()),
            }
        }
        "GetModuleLogs" => {
            let Some(items) = payload.get("items").and_then(Value::as_array) else {
                return error(400, "payload needs \"items\": [{\"id\": \"<module>\", \"filter\": {\"tail\": N}}]");
            };
            let mut out = Vec::new();
            for item in items {
                let module = match module_id(item, "id") {
                    Ok(module) => module,
                    Err(answer) => return answer,
                };
                let tail = item.pointer("/filter/tail").and_then(Value::as_u64).map_or(DEFAULT_TAIL, |n| n as usize);
                let dir = agent.module_logs().dir;
                let name = module.to_string();
                let lines = tokio::task::spawn_blocking(move || {
                    let mut lines = Vec::new();
                    let query = Query { tail: Some(tail), since: None, follow: false };
                    reader::stream(
                        &dir,
                        &name,
                        query,
                        &mut |line| {
                            lines.push(line.text);
                            true
                        },
                        &|| true,
                    )
                    .map(|()| lines)
                })
                .await;
                match lines {
                    Ok(Ok(lines)) => out.push(json!({"id": module.as_str(), "payload": lines.join("\n")})),
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                        return error(404, format!("module {module} has no logs"));
                    }
                    Ok(Err(e)) => return error(500, format!("cannot read the logs of {module}: {e}")),
                    Err(e) => return error(500, e.to_string()),
                }
            }
            (200, Value::Array(out))
        }
        other => {
            error(404, format!("the agent has no method {other:?}; it answers ping, RestartModule, GetModuleLogs"))
        }
    }
}
