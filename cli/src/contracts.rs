//! `chorus contracts`: read contracts, sign the terms shown, amend, send and cancel them, fetch
//! the PDF or the sealed record, and check a sealed record offline.
//!
//! ```text
//! chorus contracts get contracts/ID                    # terms, signatures, seal, deliverables
//! chorus contracts sign contracts/ID --ip 203.0.113.7  # signs the current terms' hash
//! chorus contracts pdf contracts/ID --sealed           # contract-ID.json
//! chorus contracts verify contract-ID.json             # offline, with GetSealingKeys's keys
//! ```

use std::path::{Path, PathBuf};

use chorus_contracts::domain::seal::{self, AuditEntry, Verified};
use chorus_kit::auth::verify::{jwks_json, parse_jwks};
use chorus_kit::clock::timestamp;
use chorus_proto::contracts::{
    AmendContractRequest, CancelContractRequest, Contract, ContractState, DocumentFormat, Funding,
    GetContractDocumentRequest, GetContractRequest, GetSealingKeysRequest, ListContractsRequest,
    ListDeliverablesRequest, Party, SendContractRequest, SignContractRequest,
};
use chorus_proto::identity::JsonWebKey;
use comfy_table::{Cell, CellAlignment};
use serde_json::{Value, json};

use crate::campaigns::campaign_name;
use crate::client::{ConnectArgs, Contracts};
use crate::deliverables::{deliverable_json, deliverables_table};
use crate::error::Result;
use crate::output::{self, enum_json, time, time_json};
use crate::terms::{self, Listable, Listed, TermsArgs};
use crate::vocab;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// The caller's contracts, newest first.
    List {
        /// Only this campaign's.
        #[arg(long)]
        campaign: Option<String>,
        /// draft, sent, signed-by-one, active, completed, cancelled, breached or expired.
        #[arg(long, value_parser = vocab::parse::<ContractState>)]
        state: Option<ContractState>,
        #[arg(long, default_value_t = 100)]
        limit: i32,
    },
    /// A contract: state, terms and their hash, signatures, seal, funding and deliverables.
    Get { name: String },
    /// Sign the contract's current terms: reads the contract and signs the hash it shows.
    Sign {
        name: String,
        /// The signer's IP address, as the app they use sees it.
        #[arg(long, default_value = "")]
        ip: String,
        /// The signer's user agent.
        #[arg(long, default_value = concat!("chorus/", env!("CARGO_PKG_VERSION")))]
        user_agent: String,
    },
    /// Change the terms of a contract not yet active (the brand): a new version, in draft.
    Amend {
        name: String,
        #[command(flatten)]
        terms: Box<TermsArgs>,
    },
    /// Send a draft contract for signature.
    Send { name: String },
    /// Cancel a contract that has not completed (the brand).
    Cancel {
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Save the contract's PDF, or with --sealed its sealed JSON record.
    Pdf {
        name: String,
        /// Where to write it ("-" for stdout); default contract-ID.pdf or contract-ID.json.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The sealed record (JSON) that `chorus contracts verify` checks, instead of the PDF.
        #[arg(long)]
        sealed: bool,
    },
    /// The public keys contracts are sealed with, as a JWKS document (for `verify --keys`).
    Keys,
    /// Check a sealed record offline: its hash, its signatures and the platform's seal.
    Verify {
        /// The sealed record (`chorus contracts pdf NAME --sealed`).
        file: PathBuf,
        /// The sealing keys as a JWKS file (`chorus contracts keys`); default: ask the
        /// contracts endpoint (no token needed).
        #[arg(long)]
        keys: Option<PathBuf>,
    },
}

pub(crate) async fn run(command: Command, connect: &ConnectArgs, json: bool) -> Result<()> {
    // What anyone may do, without a token.
    let command = match command {
        Command::Keys => {
            let keys = sealing_keys(connect).await?;
            return output::print_json(&serde_json::from_str(&jwks_json(&keys))?);
        }
        Command::Verify { file, keys } => return verify(&file, keys.as_deref(), connect, json).await,
        other => other,
    };
    let mut client = connect.contracts().await?;
    // Each move answers with the contract, shown once below.
    let contract = match command {
        Command::List { campaign, state, limit } => {
            let page = client
                .list_contracts(ListContractsRequest {
                    campaign: campaign.as_deref().map(campaign_name).unwrap_or_default(),
                    state: state.map_or(0, i32::from),
                    page_size: limit,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            return terms::print_page(json, &page.contracts, &page.next_page_token);
        }
        Command::Get { name } => {
            let c = get_contract(&mut client, &name).await?;
            let deliverables = client
                .list_deliverables(ListDeliverablesRequest { parent: c.name.clone() })
                .await?
                .into_inner()
                .deliverables;
            if json {
                let mut v = contract_json(&c);
                v["deliverables"] = deliverables.iter().map(deliverable_json).collect();
                return output::print_json(&v);
            }
            for line in contract_lines(&c) {
                outln!("{line}");
            }
            if !deliverables.is_empty() {
                outln!("Deliverables:");
                outln!("{}", deliverables_table(&deliverables));
            }
            return Ok(());
        }
        Command::Sign { name, ip, user_agent } => {
            let shown = get_contract(&mut client, &name).await?;
            let c = client
                .sign_contract(SignContractRequest {
                    name: shown.name.clone(),
                    terms_version: shown.terms_version,
                    terms_sha256: shown.terms_sha256.clone(),
                    ip_address: ip,
                    user_agent,
                })
                .await?
                .into_inner()
                .contract
                .ok_or(NO_CONTRACT)?;
            if json {
                return output::print_json(&json!({
                    "signed": {"terms_version": shown.terms_version, "terms_sha256": shown.terms_sha256},
                    "contract": contract_json(&c),
                }));
            }
            outln!(
                "Signed terms version {} of {}: sha256 {}",
                shown.terms_version,
                c.name,
                shown.terms_sha256
            );
            outln!("{}", state_sentence(&c));
            return Ok(());
        }
        Command::Amend { name, terms } => {
            if terms.is_empty() {
                return Err("nothing to amend: give the terms to change (--cash, --deliverable, ...)".into());
            }
            let current = get_contract(&mut client, &name).await?;
            client
                .amend_contract(AmendContractRequest {
                    name: current.name,
                    terms: Some(terms.apply(current.terms.unwrap_or_default())),
                })
                .await?
                .into_inner()
                .contract
        }
        Command::Send { name } => {
            let name = vocab::contract_name(&name)?;
            client
                .send_contract(SendContractRequest { name })
                .await?
                .into_inner()
                .contract
        }
        Command::Cancel { name, reason } => {
            let name = vocab::contract_name(&name)?;
            client
                .cancel_contract(CancelContractRequest { name, reason })
                .await?
                .into_inner()
                .contract
        }
        Command::Pdf { name, output, sealed } => {
            let name = vocab::contract_name(&name)?;
            let format = if sealed {
                DocumentFormat::SealedJson
            } else {
                DocumentFormat::Pdf
            };
            let document = client
                .get_contract_document(GetContractDocumentRequest {
                    name: name.clone(),
                    format: format as i32,
                })
                .await?
                .into_inner()
                .document
                .ok_or("the server answered without a document")?;
            let path = output.unwrap_or_else(|| document_file(&name, sealed));
            if path == Path::new("-") {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                out.write_all(&document.content)?;
                out.flush()?;
                return Ok(());
            }
            std::fs::write(&path, &document.content).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            if json {
                return output::print_json(&json!({
                    "file": path.display().to_string(),
                    "content_type": document.content_type,
                    "bytes": document.content.len(),
                    "terms_sha256": document.terms_sha256,
                }));
            }
            outln!(
                "Wrote {} ({} bytes, {}); terms sha256 {}",
                path.display(),
                output::count(document.content.len() as i64),
                document.content_type,
                document.terms_sha256
            );
            return Ok(());
        }
        Command::Keys | Command::Verify { .. } => unreachable!("answered above without a token"),
    };
    let c = contract.ok_or(NO_CONTRACT)?;
    output::show(json, || contract_json(&c), || contract_lines(&c))
}

const NO_CONTRACT: &str = "the server answered without a contract";

async fn get_contract(client: &mut Contracts, name: &str) -> Result<Contract> {
    Ok(client
        .get_contract(GetContractRequest {
            name: vocab::contract_name(name)?,
        })
        .await?
        .into_inner()
        .contract
        .ok_or(NO_CONTRACT)?)
}

/// "contract-ID.pdf", or "contract-ID.json" for the sealed record.
fn document_file(name: &str, sealed: bool) -> PathBuf {
    let id = name.trim_start_matches("contracts/");
    PathBuf::from(format!("contract-{id}.{}", if sealed { "json" } else { "pdf" }))
}

/// The keys GetSealingKeys lists, asked for without a token.
async fn sealing_keys(connect: &ConnectArgs) -> Result<Vec<JsonWebKey>> {
    let keys = connect
        .contracts_anonymous()
        .await?
        .get_sealing_keys(GetSealingKeysRequest {})
        .await?
        .into_inner()
        .keys;
    Ok(keys
        .into_iter()
        .map(|k| JsonWebKey {
            kty: k.kty,
            crv: k.crv,
            x: k.x,
            kid: k.kid,
            alg: seal::ALGORITHM.to_owned(),
            r#use: "sig".to_owned(),
        })
        .collect())
}

/// `chorus contracts verify`: prints "valid: ..." or "invalid: ..."; an invalid record is an
/// error (non-zero exit).
async fn verify(file: &Path, keys: Option<&Path>, connect: &ConnectArgs, json: bool) -> Result<()> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let keys = match keys {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            parse_jwks(&text).map_err(|e| {
                let why = e.violations().first().map_or(e.message(), |v| v.description.as_str());
                format!("{} is not a JWKS document ({{\"keys\": [...]}}): {why}", path.display())
            })?
        }
        None => sealing_keys(connect).await?,
    };
    let verdict = seal::verify(&bytes, &keys);
    if json {
        output::print_json(&match &verdict {
            Ok(v) => verified_json(v),
            Err(e) => json!({"valid": false, "error": e.to_string()}),
        })?;
    } else {
        outln!("{}", verdict_line(&verdict));
    }
    match verdict {
        Ok(_) => Ok(()),
        Err(_) => Err(format!("{} does not verify", file.display()).into()),
    }
}

/// "valid: contracts/..., terms sha256 ..., sealed by key ... at ..., signed by brand ... at ...
/// from ..., influencer ..." or "invalid: <what failed>".
fn verdict_line(verdict: &Result<Verified, seal::VerifyError>) -> String {
    let v = match verdict {
        Ok(v) => v,
        Err(e) => return format!("invalid: {e}"),
    };
    let r = &v.record;
    let signed: Vec<String> = r.audit.iter().map(audit_phrase).collect();
    format!(
        "valid: {}, terms version {} sha256 {}, sealed by key {} at {}, signed by {}",
        r.document.contract,
        r.document.terms_version,
        r.terms_sha256,
        r.seal.key_id,
        timestamp(r.seal.seal_micros),
        signed.join(", ")
    )
}

/// "brand users/ana at 2026-... from 203.0.113.7".
fn audit_phrase(a: &AuditEntry) -> String {
    let mut s = format!("{} {} at {}", a.party.label(), a.signer, timestamp(a.sign_micros));
    if !a.ip_address.is_empty() {
        s.push_str(" from ");
        s.push_str(&a.ip_address);
    }
    s
}

fn verified_json(v: &Verified) -> Value {
    let r = &v.record;
    json!({
        "valid": true,
        "contract": r.document.contract,
        "terms_version": r.document.terms_version,
        "terms_sha256": r.terms_sha256,
        "campaign": r.document.campaign,
        "influencer": r.document.influencer,
        "brand": {"tenant": r.document.brand.tenant, "display_name": r.document.brand.display_name},
        "seal": {
            "key_id": r.seal.key_id,
            "algorithm": r.seal.algorithm,
            "seal_time": timestamp(r.seal.seal_micros).to_string(),
        },
        "audit": r.audit.iter().map(|a| json!({
            "party": a.party.label(),
            "signer": a.signer,
            "sign_time": timestamp(a.sign_micros).to_string(),
            "ip_address": a.ip_address,
            "user_agent": a.user_agent,
            "terms_version": a.terms_version,
            "terms_sha256": a.terms_sha256,
        })).collect::<Vec<_>>(),
    })
}

/// Where a contract stands, in one sentence, for after a move.
pub(crate) fn state_sentence(c: &Contract) -> String {
    let state = ContractState::try_from(c.state).unwrap_or(ContractState::Unspecified);
    match state {
        ContractState::SignedByOne => {
            let signed: Vec<String> = current_signatures(c)
                .map(|s| format!("the {}", vocab::label::<Party>(s.party)))
                .collect();
            format!(
                "{} is signed by {}; waiting for the other party (until {}).",
                c.name,
                signed.join(" and "),
                time(c.sign_by_time.as_ref())
            )
        }
        ContractState::Active => format!(
            "{} is active: signed by both and sealed{}.",
            c.name,
            c.seal
                .as_ref()
                .map(|s| format!(" with key {} at {}", s.key_id, time(s.seal_time.as_ref())))
                .unwrap_or_default()
        ),
        _ => format!("{} is {}.", c.name, vocab::label::<ContractState>(c.state)),
    }
}

/// After an offer is accepted: the contract to sign, and how.
pub(crate) fn signing_hint(c: &Contract) -> String {
    let state = if c.state == ContractState::Sent as i32 {
        "sent for signature".to_owned()
    } else {
        vocab::label::<ContractState>(c.state)
    };
    format!(
        "{} is {state}: terms version {}, sha256 {}.\nSign it: chorus contracts sign {}",
        c.name, c.terms_version, c.terms_sha256, c.name
    )
}

fn current_signatures(c: &Contract) -> impl Iterator<Item = &chorus_proto::contracts::Signature> {
    c.signatures.iter().filter(|s| s.terms_version == c.terms_version)
}

/// A contract as people read it: the parties, where it stands, its terms and hash, who
/// signed, the seal.
fn contract_lines(c: &Contract) -> Vec<String> {
    let mut out = vec![format!("{}  {} and {}", c.name, c.brand_display_name, c.influencer)];
    let funding = if c.funding == 0 {
        String::new()
    } else {
        format!(", funding {}", vocab::label::<Funding>(c.funding))
    };
    out.push(format!(
        "  {}{funding}; campaign {}{}; offer {}",
        vocab::label::<ContractState>(c.state),
        c.campaign,
        if c.segment.is_empty() {
            String::new()
        } else {
            format!(", segment {}", c.segment)
        },
        c.offer
    ));
    out.push(format!(
        "  terms version {}, sha256 {}",
        c.terms_version, c.terms_sha256
    ));
    let state = ContractState::try_from(c.state).unwrap_or(ContractState::Unspecified);
    if c.activate_time.is_some() {
        out.push(format!("  active since {}", time(c.activate_time.as_ref())));
    } else if matches!(
        state,
        ContractState::Draft | ContractState::Sent | ContractState::SignedByOne
    ) {
        out.push(format!("  to be signed by {}", time(c.sign_by_time.as_ref())));
    }
    if !c.reason.is_empty() {
        out.push(format!("  reason: {}", c.reason));
    }
    if state == ContractState::Draft {
        out.push(format!(
            "  a draft: send it for signature with `chorus contracts send {}`",
            c.name
        ));
    }
    out.extend(terms::lines(c.terms.as_ref(), "  "));
    if c.signatures.is_empty() {
        out.push("Signatures: none yet".to_owned());
    } else {
        out.push("Signatures:".to_owned());
        let mut t = output::table(&["party", "signer", "time", "ip", "user agent", "version", "sha256"]);
        for s in &c.signatures {
            t.add_row(vec![
                Cell::new(vocab::label::<Party>(s.party)),
                Cell::new(&s.signer),
                Cell::new(time(s.sign_time.as_ref())),
                Cell::new(if s.ip_address.is_empty() { "-" } else { &s.ip_address }),
                Cell::new(&s.user_agent),
                Cell::new(if s.terms_version == c.terms_version {
                    s.terms_version.to_string()
                } else {
                    format!("{} (superseded)", s.terms_version)
                })
                .set_alignment(CellAlignment::Right),
                Cell::new(&s.terms_sha256),
            ]);
        }
        out.push(t.to_string());
    }
    if let Some(s) = &c.seal {
        out.push(format!(
            "Seal: {} by key {} at {}",
            s.algorithm,
            s.key_id,
            time(s.seal_time.as_ref())
        ));
    }
    out
}

impl Listable for Contract {
    const WHAT: &'static str = "contract";
    const WHEN: &'static str = "updated";

    fn json(&self) -> Value {
        contract_json(self)
    }

    fn row(&self) -> Listed<'_> {
        Listed {
            name: &self.name,
            influencer: &self.influencer,
            state: vocab::label::<ContractState>(self.state),
            version: self.terms_version,
            terms: self.terms.as_ref(),
            time: self.update_time.as_ref(),
        }
    }
}

pub(crate) fn contract_json(c: &Contract) -> Value {
    json!({
        "name": c.name,
        "offer": c.offer,
        "campaign": c.campaign,
        "influencer": c.influencer,
        "state": enum_json::<ContractState>(c.state),
        "terms": c.terms.as_ref().map(terms::terms_json),
        "terms_version": c.terms_version,
        "terms_json": c.terms_json,
        "terms_sha256": c.terms_sha256,
        "signatures": c.signatures.iter().map(|s| json!({
            "party": enum_json::<Party>(s.party),
            "signer": s.signer,
            "sign_time": time_json(s.sign_time.as_ref()),
            "ip_address": s.ip_address,
            "user_agent": s.user_agent,
            "terms_version": s.terms_version,
            "terms_sha256": s.terms_sha256,
        })).collect::<Vec<_>>(),
        "seal": c.seal.as_ref().map(|s| json!({
            "key_id": s.key_id,
            "algorithm": s.algorithm,
            "signature": s.signature,
            "seal_time": time_json(s.seal_time.as_ref()),
        })),
        "funding": enum_json::<Funding>(c.funding),
        "reason": c.reason,
        "segment": c.segment,
        "brand_display_name": c.brand_display_name,
        "sign_by_time": time_json(c.sign_by_time.as_ref()),
        "activate_time": time_json(c.activate_time.as_ref()),
        "create_time": time_json(c.create_time.as_ref()),
        "update_time": time_json(c.update_time.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_contracts::domain::document::{Brand, TermsDocument};
    use chorus_contracts::domain::seal::Party as SealParty;
    use chorus_contracts::domain::terms::Terms;
    use chorus_kit::auth::SigningKey;
    use chorus_kit::names::{CampaignName, InfluencerName};
    use chorus_proto::contracts::{Seal, Signature};

    const CONTRACT: &str = "contracts/0193a5b2-7c1d-7e4f-8a9b-0c1d2e3f4a5b";
    const INFLUENCER_ID: &str = "0193a5b2-1111-7111-8111-111111111111";
    /// 2027-01-15T08:00:00Z.
    const MICROS: i64 = 1_800_000_000_000_000;

    /// A record sealed with `key`, as `contracts pdf --sealed` writes it.
    fn sealed(key: &SigningKey) -> Vec<u8> {
        let flags = crate::terms::flags(&[
            "--deliverable",
            "instagram:feed-post:1:2027-01-30",
            "--cash",
            "250 USD",
            "--jurisdiction",
            "US",
        ]);
        let terms = Terms::parse(&flags.apply(Default::default()), "terms").unwrap();
        let campaign = CampaignName::from_id("0193a5b2-0000-7000-8000-00000000c0de").unwrap();
        let influencer = InfluencerName::from_id(INFLUENCER_ID).unwrap();
        let brand = Brand {
            tenant: "demo".to_owned(),
            display_name: "Pawsome".to_owned(),
        };
        let doc = TermsDocument::new(CONTRACT, 1, &campaign, brand, &influencer, terms);
        let sha = doc.sha256_hex().unwrap();
        let entry = |party, signer: &str, ip: &str, at| AuditEntry {
            party,
            signer: signer.to_owned(),
            sign_micros: at,
            ip_address: ip.to_owned(),
            user_agent: "test".to_owned(),
            terms_version: 1,
            terms_sha256: sha.clone(),
        };
        let audit = vec![
            entry(
                SealParty::Influencer,
                &format!("influencers/{INFLUENCER_ID}"),
                "203.0.113.7",
                MICROS,
            ),
            entry(SealParty::Brand, "dev", "", MICROS + 60_000_000),
        ];
        seal::seal(&doc, audit, key, MICROS + 61_000_000)
            .unwrap()
            .to_json()
            .unwrap()
    }

    #[test]
    fn a_sealed_record_reads_as_one_line_valid_or_not() {
        let key = SigningKey::generate().unwrap();
        let json = sealed(&key);
        let verdict = seal::verify(&json, &[key.public_jwk()]);
        let line = verdict_line(&verdict);
        let sha = verdict.as_ref().unwrap().record.terms_sha256.clone();
        assert_eq!(
            line,
            format!(
                "valid: {CONTRACT}, terms version 1 sha256 {sha}, sealed by key {} at 2027-01-15T08:01:01Z, \
                 signed by influencer influencers/{INFLUENCER_ID} at 2027-01-15T08:00:00Z from 203.0.113.7, \
                 brand dev at 2027-01-15T08:01:00Z",
                key.kid()
            )
        );
        let v = verified_json(verdict.as_ref().unwrap());
        assert_eq!(v["valid"], true);
        assert_eq!(v["audit"][0]["ip_address"], "203.0.113.7");

        // One byte of the IP changed: the seal no longer matches.
        let text = String::from_utf8(json).unwrap().replace("203.0.113.7", "203.0.113.8");
        let line = verdict_line(&seal::verify(text.as_bytes(), &[key.public_jwk()]));
        assert_eq!(
            line,
            format!(
                "invalid: the seal's signature does not match the record (key {})",
                key.kid()
            )
        );
    }

    #[test]
    fn sealing_keys_round_trip_through_a_jwks_file() {
        let key = SigningKey::generate().unwrap();
        let mut jwk = key.public_jwk();
        jwk.alg = seal::ALGORITHM.to_owned();
        jwk.r#use = "sig".to_owned();
        let doc = jwks_json(std::slice::from_ref(&jwk));
        let back = parse_jwks(&doc).unwrap();
        assert_eq!(back, [jwk]);
        assert!(seal::verify(&sealed(&key), &back).is_ok());
    }

    #[test]
    fn documents_are_named_after_the_contract() {
        assert_eq!(document_file("contracts/abc", false), PathBuf::from("contract-abc.pdf"));
        assert_eq!(document_file("contracts/abc", true), PathBuf::from("contract-abc.json"));
    }

    #[test]
    fn a_contract_reads_with_its_signatures_and_seal() {
        let at = Some(timestamp(MICROS));
        let c = Contract {
            name: CONTRACT.to_owned(),
            influencer: "influencers/i1".to_owned(),
            brand_display_name: "Pawsome".to_owned(),
            state: ContractState::Active as i32,
            funding: Funding::Held as i32,
            terms_version: 2,
            terms_sha256: "ab".repeat(32),
            signatures: vec![
                Signature {
                    party: Party::Influencer as i32,
                    signer: "influencers/i1".to_owned(),
                    sign_time: at,
                    terms_version: 1,
                    ..Default::default()
                },
                Signature {
                    party: Party::Brand as i32,
                    signer: "dev".to_owned(),
                    sign_time: at,
                    ip_address: "198.51.100.4".to_owned(),
                    terms_version: 2,
                    ..Default::default()
                },
            ],
            seal: Some(Seal {
                key_id: "k1".to_owned(),
                algorithm: "EdDSA".to_owned(),
                signature: String::new(),
                seal_time: at,
            }),
            activate_time: at,
            ..Default::default()
        };
        let lines = contract_lines(&c);
        assert_eq!(lines[0], format!("{CONTRACT}  Pawsome and influencers/i1"));
        assert!(lines[1].starts_with("  active, funding held;"), "{}", lines[1]);
        assert_eq!(lines[2], format!("  terms version 2, sha256 {}", "ab".repeat(32)));
        assert_eq!(lines[3], "  active since 2027-01-15T08:00:00Z");
        let table = lines.iter().find(|l| l.contains("198.51.100.4")).unwrap();
        assert!(table.contains("1 (superseded)"), "{table}");
        assert_eq!(lines.last().unwrap(), "Seal: EdDSA by key k1 at 2027-01-15T08:00:00Z");
        assert_eq!(
            state_sentence(&c),
            format!("{CONTRACT} is active: signed by both and sealed with key k1 at 2027-01-15T08:00:00Z.")
        );
        let v = contract_json(&c);
        assert_eq!(v["state"], "CONTRACT_STATE_ACTIVE");
        let sent = Contract {
            state: ContractState::Sent as i32,
            terms_version: 1,
            terms_sha256: "cd".repeat(32),
            sign_by_time: at,
            ..c.clone()
        };
        assert_eq!(
            signing_hint(&sent),
            format!(
                "{CONTRACT} is sent for signature: terms version 1, sha256 {}.\nSign it: chorus contracts sign {CONTRACT}",
                "cd".repeat(32)
            )
        );
        let draft = Contract {
            state: ContractState::Draft as i32,
            ..sent.clone()
        };
        assert!(contract_lines(&draft).contains(&format!(
            "  a draft: send it for signature with `chorus contracts send {CONTRACT}`"
        )));
        let cancelled = Contract {
            state: ContractState::Cancelled as i32,
            activate_time: None,
            ..sent
        };
        assert!(!contract_lines(&cancelled).iter().any(|l| l.contains("to be signed by")));
        assert_eq!(v["signatures"][1]["party"], "PARTY_BRAND");
        assert_eq!(v["seal"]["key_id"], "k1");
    }
}
