//! `chorus events dead`: the events each service's consumers gave up on (dead letters), with
//! their errors. `chorus events replay [SERVICE/ID...]`: runs their handlers again, once the
//! cause is mended; without ids, every dead letter of every service. Needs a token with
//! `admin.events` (`chorus up`'s dev token has it).

use chorus_proto::admin::{DeadLetter, ListDeadLettersRequest, ReplayDeadLettersRequest};
use comfy_table::{Cell, CellAlignment};
use serde_json::{Value, json};

use crate::client::{ConnectArgs, EventAdmin};
use crate::error::Result;
use crate::output::{self, time_json};

/// Ids one ReplayDeadLetters call may name.
const REPLAY_BATCH: usize = 1000;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// List the dead letters of every service, oldest first.
    Dead {
        /// Only this service's (registry, matching).
        #[arg(long, value_parser = service_name)]
        service: Option<String>,
    },
    /// Replay dead letters through the handler that gave up on them; those that succeed are
    /// removed, the others stay with their new error.
    Replay {
        /// Dead letters as SERVICE/ID, as `chorus events dead` prints them; none means every one.
        #[arg(value_parser = dead_letter_ref)]
        ids: Vec<(String, i64)>,
    },
}

/// The services whose consumers may leave dead letters, by the flag that says where they are.
fn services(connect: &ConnectArgs) -> [(&'static str, &str); 5] {
    [
        ("registry", connect.endpoint.as_str()),
        ("matching", connect.matching_endpoint.as_str()),
        ("contracts", connect.contracts_endpoint.as_str()),
        ("payouts", connect.payouts_endpoint.as_str()),
        ("measurement", connect.measurement_endpoint.as_str()),
    ]
}

const SERVICE_NAMES: [&str; 5] = ["registry", "matching", "contracts", "payouts", "measurement"];

fn service_name(s: &str) -> Result<String, String> {
    if SERVICE_NAMES.contains(&s) {
        Ok(s.to_owned())
    } else {
        Err(format!("no service {s:?}; services: {}", SERVICE_NAMES.join(", ")))
    }
}

/// "matching/12" as (matching, 12).
fn dead_letter_ref(s: &str) -> Result<(String, i64), String> {
    let (service, id) = s
        .split_once('/')
        .ok_or("expected SERVICE/ID, for example matching/12, as `chorus events dead` prints")?;
    let service = service_name(service)?;
    let id = id.parse().map_err(|e| format!("id {id:?}: {e}"))?;
    Ok((service, id))
}

pub(crate) async fn run(command: Command, connect: &ConnectArgs, json: bool) -> Result<()> {
    match command {
        Command::Dead { service } => dead(service.as_deref(), connect, json).await,
        Command::Replay { ids } => replay(&ids, connect, json).await,
    }
}

async fn dead(only: Option<&str>, connect: &ConnectArgs, json: bool) -> Result<()> {
    let mut all = Vec::new();
    for (service, url) in services(connect) {
        if only.is_some_and(|o| o != service) {
            continue;
        }
        let mut client = connect.event_admin(url).await?;
        all.extend(list_all(&mut client).await?.into_iter().map(|d| (service, d)));
    }
    if json {
        let rows: Vec<Value> = all.iter().map(|(s, d)| dead_letter_json(s, d)).collect();
        return output::print_json(&Value::Array(rows));
    }
    if all.is_empty() {
        outln!("no dead letters");
        return Ok(());
    }
    outln!("{}", dead_letters_table(&all));
    outln!("replay with: chorus events replay SERVICE/ID ... (or no ids for all)");
    Ok(())
}

async fn list_all(client: &mut EventAdmin) -> Result<Vec<DeadLetter>> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_dead_letters(ListDeadLettersRequest {
                page_size: 1000,
                page_token,
            })
            .await?
            .into_inner();
        all.extend(page.dead_letters);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}

async fn replay(ids: &[(String, i64)], connect: &ConnectArgs, json: bool) -> Result<()> {
    let mut replayed = 0;
    let mut failed = Vec::new();
    for (service, url) in services(connect) {
        let mine: Vec<i64> = ids.iter().filter(|(s, _)| s == service).map(|(_, id)| *id).collect();
        if !ids.is_empty() && mine.is_empty() {
            continue;
        }
        let mut client = connect.event_admin(url).await?;
        // No ids: one call replays every dead letter of the service.
        let batches: Vec<&[i64]> = if mine.is_empty() {
            vec![&[]]
        } else {
            mine.chunks(REPLAY_BATCH).collect()
        };
        for batch in batches {
            let answer = client
                .replay_dead_letters(ReplayDeadLettersRequest { ids: batch.to_vec() })
                .await?
                .into_inner();
            replayed += answer.replayed_count;
            failed.extend(answer.failed.into_iter().map(|d| (service, d)));
        }
    }
    if json {
        let failed: Vec<Value> = failed.iter().map(|(s, d)| dead_letter_json(s, d)).collect();
        return output::print_json(&json!({"replayed_count": replayed, "failed": failed}));
    }
    outln!("replayed {replayed}, failed again {}", failed.len());
    if !failed.is_empty() {
        outln!("{}", dead_letters_table(&failed));
    }
    Ok(())
}

fn dead_letters_table(rows: &[(&str, DeadLetter)]) -> comfy_table::Table {
    let mut table = output::table(&["ID", "TOPIC", "GROUP", "EVENT", "ATTEMPTS", "DEAD SINCE", "ERROR"]);
    for (service, d) in rows {
        table.add_row(vec![
            Cell::new(format!("{service}/{}", d.id)),
            Cell::new(&d.topic),
            Cell::new(&d.group),
            Cell::new(format!("{}\n{}", d.event_type, d.event_id)),
            Cell::new(d.attempts).set_alignment(CellAlignment::Right),
            Cell::new(output::time(d.dead_time.as_ref())),
            Cell::new(&d.error),
        ]);
    }
    table
}

fn dead_letter_json(service: &str, d: &DeadLetter) -> Value {
    json!({
        "id": format!("{service}/{}", d.id),
        "service": service,
        "topic": d.topic,
        "group": d.group,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "attempts": d.attempts,
        "error": d.error,
        "dead_time": time_json(d.dead_time.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_are_named_by_service_and_id() {
        assert_eq!(dead_letter_ref("matching/12").unwrap(), ("matching".to_owned(), 12));
        assert!(dead_letter_ref("12").unwrap_err().contains("SERVICE/ID"));
        assert!(dead_letter_ref("payroll/1").unwrap_err().contains("no service"));
        assert!(dead_letter_ref("registry/x").unwrap_err().contains("\"x\""));
    }
}
