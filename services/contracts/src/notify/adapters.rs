//! The notifier's adapters: [`Smtp`] sends through a mail server (`CHORUS_SMTP_URL`), [`Files`]
//! writes each message as a file into a directory (development: `chorus up` reads
//! `.chorus/mail/`).

use std::path::PathBuf;
use std::time::Duration;

use chorus_kit::{Error, ErrorCode};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Address, Delivered, Message, Notifier};

/// Writes each message to `dir/<kind>-<event id>.eml`, as plain RFC 5322 text.
#[derive(Debug, Clone)]
pub struct Files {
    pub dir: PathBuf,
}

#[async_trait::async_trait]
impl Notifier for Files {
    async fn deliver(&self, to: &Address, m: &Message) -> Result<Delivered, Error> {
        let text = format!(
            "Message-ID: {}\nTo: {}\nSubject: {}\nContent-Type: text/plain; charset=utf-8\n\n{}",
            m.message_id(),
            to.expose(),
            m.subject,
            m.body
        );
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| Error::internal("create the mail directory", e))?;
        let file = self.dir.join(format!("{}-{}.eml", m.kind.as_str(), m.id));
        tokio::fs::write(&file, text)
            .await
            .map_err(|e| Error::internal("write a message", e))?;
        Ok(Delivered::Sent)
    }
}

/// How the SMTP adapter reaches its server and retries.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// `smtp://host:port` (plain; `?tls=required` for STARTTLS), `smtps://host:port` (TLS from
    /// the start); `user:password@` in it for servers that ask for a login.
    pub url: String,
    /// The sender, "Chorus <no-reply@example.com>".
    pub from: Mailbox,
    /// Each connection and command.
    pub timeout: Duration,
    /// Tries per message, the first included, before the event is handed back to the bus.
    pub attempts: u32,
    /// The wait before the second try; it doubles after each one.
    pub retry_delay: Duration,
}

/// Sends through an SMTP server with lettre. A transient failure (a 4xx reply, a server that
/// cannot be reached or times out) is tried again with backoff, then handed back as an error,
/// so the bus brings the event again later; a 5xx reply is a refusal, recorded and not retried.
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    settings: SmtpSettings,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("Smtp")
            .field("from", &self.settings.from)
            .finish_non_exhaustive()
    }
}

impl Smtp {
    pub fn new(settings: SmtpSettings) -> Result<Self, SmtpError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)?
            .timeout(Some(settings.timeout))
            .build();
        Ok(Smtp { transport, settings })
    }

    fn email(&self, to: Mailbox, m: &Message) -> Result<lettre::Message, lettre::error::Error> {
        lettre::Message::builder()
            .from(self.settings.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(m.message_id()))
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone())
    }
}

/// A server's reply as it may be recorded: its code and text, with the address taken out
/// (servers often repeat it).
fn reply(e: &SmtpError, to: &Address) -> String {
    let text = e.to_string().replace(to.expose(), "<recipient>");
    match e.status() {
        Some(code) => format!("SMTP {code}: {text}"),
        None => format!("SMTP: {text}"),
    }
}

#[async_trait::async_trait]
impl Notifier for Smtp {
    async fn deliver(&self, to: &Address, m: &Message) -> Result<Delivered, Error> {
        let Ok(mailbox) = to.expose().parse::<Mailbox>() else {
            return Ok(Delivered::Refused("not a valid email address".to_owned()));
        };
        let email = self
            .email(mailbox, m)
            .map_err(|e| Error::internal("build a message", e))?;
        let attempts = self.settings.attempts.max(1);
        let mut delay = self.settings.retry_delay;
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.transport.send(email.clone()).await {
                Ok(_) => return Ok(Delivered::Sent),
                Err(e) if e.is_permanent() => return Ok(Delivered::Refused(reply(&e, to))),
                Err(e) => {
                    last = reply(&e, to);
                    tracing::warn!(message = %m.id, about = %m.about, attempt, error = %last, "SMTP send failed; will retry");
                }
            }
            if attempt < attempts {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
        Err(Error::new(
            ErrorCode::Unavailable,
            format!("the mail server did not take the message after {attempts} tries: {last}"),
        ))
    }
}
