//! Telling influencers: the port contracts sends through, and its adapters. `Files` writes
//! each message as an RFC 5322 file into a directory (the development adapter `chorus up`
//! uses: read `.chorus/mail/`), `Quiet` only logs that a message went, without its link, which
//! holds a sign-in code. SMTP joins them with the notifications issue.

use std::path::PathBuf;

use chorus_kit::Error;
use chorus_proto::contracts::Offer;

#[async_trait::async_trait]
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// The influencer of `offer` is invited to sign in at `link` and answer it.
    async fn offer(&self, offer: &Offer, link: &str) -> Result<(), Error>;
}

/// The text of an offer's invitation.
pub fn offer_message(offer: &Offer, link: &str) -> (String, String) {
    let subject = format!("{} invites you to a campaign", offer.brand_display_name);
    let body = format!(
        "{} offers you a paid collaboration ({}).\n\nSign in to read the terms and accept, counter or decline:\n{link}\n\nThe offer is open until {}.\n",
        offer.brand_display_name,
        offer.name,
        offer.expire_time.map(|t| t.to_string()).unwrap_or_default(),
    );
    (subject, body)
}

/// Writes each message to `dir/<offer id>.eml`.
#[derive(Debug, Clone)]
pub struct Files {
    pub dir: PathBuf,
}

#[async_trait::async_trait]
impl Notifier for Files {
    async fn offer(&self, offer: &Offer, link: &str) -> Result<(), Error> {
        let (subject, body) = offer_message(offer, link);
        let text = format!(
            "To: {}\nSubject: {subject}\nContent-Type: text/plain; charset=utf-8\n\n{body}",
            offer.influencer
        );
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| Error::internal("create the mail directory", e))?;
        let file = self
            .dir
            .join(format!("{}.eml", offer.name.trim_start_matches("offers/")));
        tokio::fs::write(&file, text)
            .await
            .map_err(|e| Error::internal("write a message", e))
    }
}

/// Logs that an invitation went, never its link.
#[derive(Debug, Clone, Copy)]
pub struct Quiet;

#[async_trait::async_trait]
impl Notifier for Quiet {
    async fn offer(&self, offer: &Offer, _link: &str) -> Result<(), Error> {
        tracing::info!(offer = %offer.name, influencer = %offer.influencer, "invitation made; no notifier configured to deliver it");
        Ok(())
    }
}
