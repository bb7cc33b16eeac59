//! `audit tail|verify|export`: the newest events (and new ones as they come), the chain's
//! verification (exit 1 when broken), a saved checkpoint's consistency with the latest, an export
//! verified offline against a signed checkpoint, and the NDJSON export streamed to a file with a
//! progress bar on a terminal.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentidp_client::{AuditEvent, AuditQuery, Client, ExportQuery, PageQuery};
use agentidp_shared::domain::audit::{SealedEvent, GENESIS_HASH};
use agentidp_shared::domain::checkpoint::{self, Checkpoint};
use agentidp_shared::domain::merkle;
use agentidp_shared::domain::time::parse_rfc3339;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::defs::{AuditCommand, OutputFormat};
use super::exit::{Class, CliError};
use super::hiargs::HiArgs;
use super::output::{cell, Printer};

pub async fn run(hi: &HiArgs, printer: Printer, command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::Tail {
            lines,
            follow,
            interval,
            action,
            exclude_actions,
            agent_id,
            outcome,
        } => {
            let filter = Filter {
                action,
                exclude_actions,
                agent_id,
                outcome,
            };
            tail(hi, printer, lines, follow.then_some(interval), filter).await
        }
        AuditCommand::Verify {
            offline: Some(export),
            checkpoint: Some(checkpoint),
            key: Some(key),
            ..
        } => verify_offline(printer, &export, &checkpoint, &key),
        AuditCommand::Verify {
            checkpoint,
            key,
            save,
            ..
        } => {
            let alone = checkpoint.is_none() && save.is_none();
            let events_checked = verify(hi, printer, alone).await?;
            if alone {
                return Ok(());
            }
            let checks = Checks {
                saved: checkpoint.as_deref(),
                key,
                save,
                events_checked,
            };
            verify_consistency(hi, printer, checks).await
        }
        AuditCommand::Export {
            file,
            from,
            to,
            after_seq,
        } => {
            let query = ExportQuery {
                from,
                to,
                after_seq,
            };
            export(hi, printer, file, query).await
        }
    }
}

struct Filter {
    action: Option<String>,
    /// Left out on this side: the API filters by one action, not by its complement.
    exclude_actions: Vec<String>,
    agent_id: Option<String>,
    outcome: Option<String>,
}

impl Filter {
    fn accepts(&self, event: &AuditEvent) -> bool {
        self.action.as_ref().is_none_or(|a| *a == event.action)
            && !self.exclude_actions.contains(&event.action)
            && self.outcome.as_ref().is_none_or(|o| *o == event.outcome)
            && self
                .agent_id
                .as_ref()
                .is_none_or(|a| event.agent_id.as_deref() == Some(a))
    }
}

/// One event: a fixed-width line for people (rows arrive over time, so no table to align), one
/// JSON object per line for scripts.
fn print_event(printer: Printer, event: &AuditEvent) -> Result<(), CliError> {
    match printer.format {
        OutputFormat::Json => {
            let line = serde_json::to_string(event)
                .map_err(|e| CliError::failure(format!("cannot encode: {e}")))?;
            printer.line(&line)
        }
        OutputFormat::Table => printer.line(&format!(
            "{:>6}  {}  {:<24}  {:<7}  {}  agent={}",
            event.seq,
            event.occurred_at,
            event.action,
            event.outcome,
            event.actor,
            cell(
                event
                    .agent_id
                    .as_ref()
                    .map(|a| serde_json::Value::from(a.as_str()))
                    .as_ref()
            ),
        )),
    }
}

async fn tail(
    hi: &HiArgs,
    printer: Printer,
    lines: u32,
    follow_every: Option<u64>,
    filter: Filter,
) -> Result<(), CliError> {
    let mut client = hi.authorized().await?;
    let query = AuditQuery {
        agent_id: filter.agent_id.clone(),
        action: filter.action.clone(),
        outcome: filter.outcome.clone(),
        page: PageQuery {
            // Exclusions are applied here, so read a full page to find `lines` that remain.
            limit: Some(if filter.exclude_actions.is_empty() {
                lines.clamp(1, 200)
            } else {
                200
            }),
            cursor: None,
        },
        ..AuditQuery::default()
    };
    let newest = client.list_audit_events(&query).await?;
    let mut last_seq = newest.data.first().map_or(0, |e| e.seq);
    let shown: Vec<&AuditEvent> = newest
        .data
        .iter()
        .filter(|e| filter.accepts(e))
        .take(lines as usize)
        .collect();
    for event in shown.into_iter().rev() {
        print_event(printer, event)?;
    }
    let Some(every) = follow_every else {
        return Ok(());
    };
    if last_seq == 0 {
        // Nothing matched: follow from the head of the whole chain.
        let head = client
            .list_audit_events(&AuditQuery {
                page: PageQuery {
                    limit: Some(1),
                    cursor: None,
                },
                ..AuditQuery::default()
            })
            .await?;
        last_seq = head.data.first().map_or(0, |e| e.seq);
    }
    loop {
        tokio::time::sleep(Duration::from_secs(every.max(1))).await;
        let query = ExportQuery {
            after_seq: Some(last_seq),
            ..ExportQuery::default()
        };
        let events = match read_events(&client, &query).await {
            // The token expired while following: get a new one and go on.
            Err(e) if e.status() == Some(401) => {
                client = hi.reauthorized().await?;
                continue;
            }
            other => other?,
        };
        for event in events {
            last_seq = last_seq.max(event.seq);
            if filter.accepts(&event) {
                print_event(printer, &event)?;
            }
        }
    }
}

/// Every event of an export, parsed.
async fn read_events(
    client: &Client,
    query: &ExportQuery,
) -> Result<Vec<AuditEvent>, agentidp_client::Error> {
    let mut export = client.export_audit_events(query).await?;
    let mut body = Vec::new();
    while let Some(chunk) = export.next_chunk().await? {
        body.extend_from_slice(&chunk);
    }
    body.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            serde_json::from_slice(line).map_err(|e| agentidp_client::Error::Decode {
                url: "/v1/audit/export".into(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The chain's verification, printed unless a checkpoint check follows (which prints both);
/// returns the events checked.
async fn verify(hi: &HiArgs, printer: Printer, print: bool) -> Result<i64, CliError> {
    let verification = hi.authorized().await?.verify_audit_chain().await?;
    if print || !verification.valid {
        printer.record(&verification)?;
    }
    if verification.valid {
        return Ok(verification.events_checked);
    }
    let broken = verification.first_broken.unwrap_or_default();
    Err(CliError {
        class: Class::Failure,
        message: format!(
            "the audit chain is broken at seq {}: {}",
            cell(broken.get("seq")),
            cell(broken.get("reason"))
        ),
        document: Some(serde_json::json!({
            "error": "audit_chain_broken",
            "first_broken": broken,
        })),
    })
}

fn read_file(path: &Path, what: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read the {what} {}: {e}", path.display())))
}

/// The verifier key itself, or the file holding it.
fn key_text(key: &str) -> Result<String, CliError> {
    if key.contains('+') {
        return Ok(key.trim().to_owned());
    }
    read_file(Path::new(key), "verifier key").map(|k| k.trim().to_owned())
}

fn broken(error: &'static str, message: String) -> CliError {
    CliError {
        class: Class::Failure,
        document: Some(serde_json::json!({ "error": error, "message": message })),
        message,
    }
}

fn checked_note(note: &str, key: &str, what: &str) -> Result<Checkpoint, CliError> {
    checkpoint::verify_note(note, key)
        .map_err(|e| broken("checkpoint_not_verified", format!("the {what}: {e}")))
}

/// `audit verify --checkpoint SAVED`: the server's latest checkpoint must be signed by the key and
/// provably extend the saved one (RFC 9162 consistency), or the history was rewritten. With
/// `--save` alone, the latest checkpoint is verified and kept as the first to compare with.
/// What `audit verify` checks beyond the chain.
struct Checks<'a> {
    saved: Option<&'a Path>,
    key: Option<String>,
    save: Option<PathBuf>,
    events_checked: i64,
}

async fn verify_consistency(
    hi: &HiArgs,
    printer: Printer,
    checks: Checks<'_>,
) -> Result<(), CliError> {
    let Checks {
        saved,
        key,
        save,
        events_checked,
    } = checks;
    let client = hi.authorized().await?;
    let key = match key {
        Some(key) => key_text(&key)?,
        None => client.audit_checkpoint_key().await?.trim().to_owned(),
    };
    let latest_note = client.latest_audit_checkpoint().await?;
    let latest = checked_note(&latest_note, &key, "server's latest checkpoint")?;
    // Without a saved checkpoint this is the first one: signed by the key, kept with --save.
    let saved = match saved {
        Some(saved) => checked_note(&read_file(saved, "checkpoint")?, &key, "saved checkpoint")?,
        None => latest.clone(),
    };
    if latest.origin != saved.origin {
        return Err(broken(
            "checkpoint_origin_mismatch",
            format!(
                "the saved checkpoint is of {}, the server's of {}",
                saved.origin, latest.origin
            ),
        ));
    }
    if latest.size < saved.size {
        return Err(broken(
            "audit_log_shrank",
            format!(
                "the log had {} events and now has {}",
                saved.size, latest.size
            ),
        ));
    }
    let proof = client.audit_consistency(saved.size, latest.size).await?;
    let hashes: Option<Vec<merkle::Hash>> = proof
        .proof
        .iter()
        .map(|h| STANDARD.decode(h).ok().and_then(|h| h.try_into().ok()))
        .collect();
    let consistent = hashes.is_some_and(|hashes| {
        merkle::verify_consistency(saved.size, latest.size, &hashes, &saved.root, &latest.root)
    });
    if !consistent {
        return Err(broken(
            "audit_log_inconsistent",
            format!(
                "the server's checkpoint of {} events does not extend the saved one of {}: its history was rewritten",
                latest.size, saved.size
            ),
        ));
    }
    if let Some(path) = save {
        std::fs::write(&path, &latest_note)
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    }
    printer.record(&serde_json::json!({
        "valid": true,
        "events_checked": events_checked,
        "consistent": true,
        "origin": latest.origin,
        "saved_size": saved.size,
        "latest_size": latest.size,
    }))
}

/// `audit verify --offline EXPORT --checkpoint NOTE --key KEY`, with no server: the note's
/// signature, every exported event's hash and link, and the note's root recomputed over the
/// export's first `size` events.
fn verify_offline(printer: Printer, export: &Path, note: &Path, key: &str) -> Result<(), CliError> {
    let key = key_text(key)?;
    let checkpoint = checked_note(&read_file(note, "checkpoint")?, &key, "checkpoint")?;
    let file = std::fs::File::open(export)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", export.display())))?;
    let mut tree = merkle::Frontier::default();
    let mut previous: Option<(i64, String)> = None;
    let mut checked: u64 = 0;
    for (n, line) in std::io::BufRead::lines(std::io::BufReader::new(file)).enumerate() {
        let line = line.map_err(|e| CliError::failure(format!("reading the export: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let event = sealed_from_export(&line).ok_or_else(|| {
            broken(
                "malformed_export",
                format!("line {} is not an audit event", n + 1),
            )
        })?;
        let expected_prev = match &previous {
            Some((seq, hash)) if event.seq == seq + 1 => hash.clone(),
            Some((seq, _)) => {
                return Err(broken(
                    "audit_chain_broken",
                    format!("seq {} follows {seq}: events are missing", event.seq),
                ))
            }
            None if event.seq == 1 => GENESIS_HASH.to_owned(),
            None => {
                return Err(broken(
                    "export_incomplete",
                    format!(
                        "the export starts at seq {}; the checkpoint's root needs every event from seq 1",
                        event.seq
                    ),
                ))
            }
        };
        if event.prev_hash != expected_prev || event.computed_hash() != event.hash {
            return Err(broken(
                "audit_chain_broken",
                format!(
                    "the event of seq {} was altered or does not follow its predecessor",
                    event.seq
                ),
            ));
        }
        if (event.seq as u64) <= checkpoint.size {
            let leaf = merkle::leaf_of_chain_hash(&event.hash).ok_or_else(|| {
                broken(
                    "audit_chain_broken",
                    format!("seq {} has no chain hash", event.seq),
                )
            })?;
            tree.append(leaf, |_, _| {});
        }
        checked += 1;
        previous = Some((event.seq, event.hash));
    }
    if tree.size() != checkpoint.size {
        return Err(broken(
            "export_incomplete",
            format!(
                "the checkpoint covers {} events; the export holds {}",
                checkpoint.size,
                tree.size()
            ),
        ));
    }
    if tree.root() != checkpoint.root {
        return Err(broken(
            "checkpoint_mismatch",
            "the checkpoint's root is not the tree of the exported events".to_owned(),
        ));
    }
    printer.record(&serde_json::json!({
        "valid": true,
        "events_checked": checked,
        "origin": checkpoint.origin,
        "checkpoint_size": checkpoint.size,
    }))
}

/// An exported event as the server stored it: `details` re-encoded as the server encodes it.
fn sealed_from_export(line: &str) -> Option<SealedEvent> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let text = |k: &str| v.get(k)?.as_str().map(str::to_owned);
    let optional = |k: &str| match v.get(k) {
        Some(serde_json::Value::Null) | None => Some(None),
        Some(serde_json::Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    };
    Some(SealedEvent {
        org_id: text("org_id")?,
        seq: v.get("seq")?.as_i64()?,
        id: text("id")?,
        occurred_at: parse_rfc3339(v.get("occurred_at")?.as_str()?)?,
        actor: text("actor")?,
        action: text("action")?,
        agent_id: optional("agent_id")?,
        target: optional("target")?,
        outcome: text("outcome")?,
        details: v.get("details")?.to_string(),
        prev_hash: text("prev_hash")?,
        hash: text("hash")?,
    })
}

/// Where an export goes: stdout, or a file written under a temporary name and renamed once
/// complete, so a cut-short export never looks like a whole one.
enum Sink {
    Stdout(std::io::Stdout),
    File {
        file: std::fs::File,
        partial: PathBuf,
        target: PathBuf,
    },
}

impl Sink {
    fn open(target: Option<PathBuf>) -> Result<Sink, CliError> {
        let Some(target) = target.filter(|p| p.as_os_str() != "-") else {
            return Ok(Sink::Stdout(std::io::stdout()));
        };
        let mut partial = target.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = std::fs::File::create(&partial)
            .map_err(|e| CliError::failure(format!("cannot create {}: {e}", partial.display())))?;
        Ok(Sink::File {
            file,
            partial,
            target,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        let result = match self {
            Sink::Stdout(out) => out.write_all(bytes),
            Sink::File { file, .. } => file.write_all(bytes),
        };
        result.map_err(|e| CliError::failure(format!("cannot write the export: {e}")))
    }

    fn target(&self) -> Option<&Path> {
        match self {
            Sink::Stdout(_) => None,
            Sink::File { target, .. } => Some(target),
        }
    }

    fn finish(self) -> Result<(), CliError> {
        match self {
            Sink::Stdout(mut out) => out
                .flush()
                .map_err(|e| CliError::failure(format!("cannot write the export: {e}"))),
            Sink::File {
                file,
                partial,
                target,
            } => file
                .sync_all()
                .and_then(|()| std::fs::rename(&partial, &target))
                .map_err(|e| {
                    CliError::failure(format!("cannot complete {}: {e}", target.display()))
                }),
        }
    }

    fn abandon(self) {
        if let Sink::File { partial, .. } = self {
            let _ = std::fs::remove_file(partial);
        }
    }
}

/// A bar on stderr when it is a terminal and the export goes to a file; nothing otherwise.
fn progress(total: Option<u64>, to_file: bool) -> Option<indicatif::ProgressBar> {
    if !to_file || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total).with_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events  {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        ),
        None => indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} events  {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        ),
    };
    // Drawn at once: a short export may end before the first timed redraw.
    bar.tick();
    Some(bar)
}

async fn export(
    hi: &HiArgs,
    printer: Printer,
    file: Option<PathBuf>,
    query: ExportQuery,
) -> Result<(), CliError> {
    let client = hi.authorized().await?;
    let mut sink = Sink::open(file)?;
    let to_file = sink.target().is_some();
    // Sequence numbers count the chain's links from 1, so the head tells how many are left,
    // unless a time bound filters them.
    let total = if to_file && query.from.is_none() && query.to.is_none() {
        let head = client
            .list_audit_events(&AuditQuery {
                page: PageQuery {
                    limit: Some(1),
                    cursor: None,
                },
                ..AuditQuery::default()
            })
            .await?;
        let head = head.data.first().map_or(0, |e| e.seq);
        Some(u64::try_from(head - query.after_seq.unwrap_or(0)).unwrap_or(0))
    } else {
        None
    };
    let bar = progress(total, to_file);
    let result = async {
        let mut export = client.export_audit_events(&query).await?;
        let (mut events, mut bytes) = (0u64, 0u64);
        while let Some(chunk) = export.next_chunk().await? {
            sink.write(&chunk)?;
            let lines = chunk.iter().filter(|b| **b == b'\n').count() as u64;
            events += lines;
            bytes += chunk.len() as u64;
            if let Some(bar) = &bar {
                bar.inc(lines);
            }
        }
        Ok::<_, CliError>((events, bytes))
    }
    .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let (events, bytes) = match result {
        Ok(counts) => counts,
        Err(e) => {
            sink.abandon();
            return Err(e);
        }
    };
    let target = sink.target().map(|p| p.display().to_string());
    sink.finish()?;
    if let Some(target) = target {
        printer.record(&serde_json::json!({
            "file": target,
            "events": events,
            "bytes": bytes,
        }))?;
    }
    Ok(())
}
