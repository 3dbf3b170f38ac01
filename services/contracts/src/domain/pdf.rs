//! The contract as people read it: an A4 PDF of the terms, and a last page with the audit trail
//! (each signature, the terms' hash, the seal). Built-in Helvetica and Courier in WinAnsi
//! encoding, so no font is embedded; a character WinAnsi lacks prints as '?'. The sealed JSON
//! record, not this rendering, is what the seal protects.

use chorus_catalog::currency;
use chorus_catalog::money::Money;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::document::TermsDocument;
use super::json::rfc3339;
use super::seal::{AuditEntry, Seal, SealedRecord};
use super::terms::Terms;

const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
const MARGIN: f32 = 56.0;
const TEXT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;
/// The footer's baseline; the text stops above it.
const FOOTER_Y: f32 = 32.0;
const BOTTOM: f32 = FOOTER_Y + 24.0;
const INDENT: f32 = 14.0;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Font {
    Regular,
    Bold,
    Mono,
}

impl Font {
    fn resource(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
            Font::Mono => Name(b"F3"),
        }
    }

    /// Width of `text` at `size` points. Bold is measured as regular with some room: only
    /// fixed headings are bold, and none of them wraps.
    fn width(self, text: &str, size: f32) -> f32 {
        let units: u32 = match self {
            Font::Mono => 600 * text.chars().count() as u32,
            Font::Regular => text.chars().map(helvetica_width).sum(),
            Font::Bold => text.chars().map(|c| helvetica_width(c) * 11 / 10).sum(),
        };
        units as f32 * size / 1000.0
    }
}

/// One line of text, placed by the paginator.
#[derive(Debug, Clone)]
struct Line {
    font: Font,
    size: f32,
    indent: f32,
    /// Space above the line, beyond its leading.
    gap: f32,
    text: String,
    /// A heading moves to the next page rather than end one.
    keep_with_next: bool,
}

#[derive(Debug, Clone)]
enum Item {
    Line(Line),
    PageBreak,
}

/// The flow of the document before it is cut into pages.
#[derive(Debug, Default)]
struct Flow(Vec<Item>);

impl Flow {
    fn title(&mut self, text: &str) {
        self.push(Font::Bold, 18.0, 0.0, 0.0, text, false);
    }

    fn heading(&mut self, text: &str) {
        self.push(Font::Bold, 12.0, 0.0, 10.0, text, true);
    }

    fn subheading(&mut self, text: &str) {
        self.push(Font::Bold, 10.0, 0.0, 6.0, text, true);
    }

    /// Body text, wrapped; line breaks in `text` start new lines.
    fn text(&mut self, text: &str) {
        self.wrapped(Font::Regular, 10.0, 0.0, text);
    }

    /// The text, or "None." for a term that is not there.
    fn text_or_none(&mut self, text: Option<String>) {
        self.text(text.as_deref().unwrap_or("None."));
    }

    fn item(&mut self, text: &str) {
        self.wrapped(Font::Regular, 10.0, INDENT, text);
    }

    fn small(&mut self, text: &str) {
        self.wrapped(Font::Regular, 8.0, 0.0, text);
    }

    /// A label and a value a reader may copy (a hash, a key id), the value in Courier.
    fn code(&mut self, label: &str, value: &str) {
        self.wrapped(Font::Regular, 10.0, INDENT, label);
        self.wrapped(Font::Mono, 8.5, 2.0 * INDENT, value);
    }

    fn page_break(&mut self) {
        self.0.push(Item::PageBreak);
    }

    fn wrapped(&mut self, font: Font, size: f32, indent: f32, text: &str) {
        for paragraph in text.split('\n') {
            for line in wrap(paragraph, font, size, TEXT_WIDTH - indent) {
                self.push(font, size, indent, 0.0, &line, false);
            }
        }
    }

    fn push(&mut self, font: Font, size: f32, indent: f32, gap: f32, text: &str, keep_with_next: bool) {
        self.0.push(Item::Line(Line {
            font,
            size,
            indent,
            gap,
            text: text.to_owned(),
            keep_with_next,
        }));
    }
}

/// Greedy word wrap to `width`; a word wider than a line is cut where it must be.
fn wrap(text: &str, font: Font, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if font.width(&candidate, size) <= width {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        for c in word.chars() {
            if !line.is_empty() && font.width(&format!("{line}{c}"), size) > width {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    lines.push(line);
    lines
}

/// A placed line: its position and its text in WinAnsi.
#[derive(Debug)]
struct Placed {
    x: f32,
    y: f32,
    font: Font,
    size: f32,
    bytes: Vec<u8>,
}

fn leading(size: f32) -> f32 {
    size * 1.4
}

/// Cuts the flow into pages, top to bottom.
fn paginate(flow: &Flow) -> Vec<Vec<Placed>> {
    let top = PAGE_HEIGHT - MARGIN;
    let mut pages: Vec<Vec<Placed>> = vec![Vec::new()];
    let mut y = top;
    let mut page_is_empty = true;
    for (i, item) in flow.0.iter().enumerate() {
        let line = match item {
            Item::PageBreak => {
                pages.push(Vec::new());
                y = top;
                page_is_empty = true;
                continue;
            }
            Item::Line(line) => line,
        };
        // A heading needs room for itself and two lines of what follows.
        let after: f32 = if line.keep_with_next {
            flow.0[i + 1..]
                .iter()
                .take(2)
                .map(|next| match next {
                    Item::Line(l) => leading(l.size) + l.gap,
                    Item::PageBreak => 0.0,
                })
                .sum()
        } else {
            0.0
        };
        if !page_is_empty && y - line.gap - leading(line.size) - after < BOTTOM {
            pages.push(Vec::new());
            y = top;
            page_is_empty = true;
        }
        if !page_is_empty {
            y -= line.gap;
        }
        y -= leading(line.size);
        page_is_empty = false;
        if let Some(page) = pages.last_mut() {
            page.push(Placed {
                x: MARGIN + line.indent,
                y,
                font: line.font,
                size: line.size,
                bytes: win_ansi(&line.text),
            });
        }
    }
    pages
}

/// The readable PDF of a sealed contract.
pub fn render(record: &SealedRecord) -> Vec<u8> {
    render_parts(&Paper {
        document: &record.document,
        terms_sha256: &record.terms_sha256,
        audit: &record.audit,
        seal: Some(&record.seal),
    })
}

/// What a PDF shows: the document, its hash, the signatures so far and the seal once there is
/// one (a contract is readable, and printable, before it is signed).
#[derive(Debug, Clone, Copy)]
pub struct Paper<'a> {
    pub document: &'a TermsDocument,
    pub terms_sha256: &'a str,
    pub audit: &'a [AuditEntry],
    pub seal: Option<&'a Seal>,
}

/// The readable PDF of a contract at any stage.
pub fn render_parts(record: &Paper<'_>) -> Vec<u8> {
    let mut flow = Flow::default();
    terms_pages(&mut flow, record);
    flow.page_break();
    audit_page(&mut flow, record);
    let pages = paginate(&flow);

    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let info = Ref::new(3);
    let fonts = [
        (Font::Regular, Ref::new(4), b"Helvetica".as_slice()),
        (Font::Bold, Ref::new(5), b"Helvetica-Bold".as_slice()),
        (Font::Mono, Ref::new(6), b"Courier".as_slice()),
    ];
    let first_page = 7;
    let page_ids: Vec<Ref> = (0..pages.len()).map(|i| Ref::new(first_page + 2 * i as i32)).collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().copied()).count(pages.len() as i32);
    let doc = &record.document;
    let title = format!("Contract {} (terms version {})", doc.contract, doc.terms_version);
    pdf.document_info(info)
        .title(TextStr(&title))
        .producer(TextStr("Chorus"));
    for (_, id, name) in fonts {
        pdf.type1_font(id)
            .base_font(Name(name))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let footer_text = |page: usize| {
        format!(
            "{} \u{b7} terms version {} \u{b7} SHA-256 {}\u{2026} \u{b7} page {} of {}",
            doc.contract,
            doc.terms_version,
            record.terms_sha256.chars().take(16).collect::<String>(),
            page + 1,
            pages.len()
        )
    };
    for (i, (page, &page_id)) in pages.iter().zip(&page_ids).enumerate() {
        let content_id = Ref::new(page_id.get() + 1);
        let mut p = pdf.page(page_id);
        p.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .parent(tree)
            .contents(content_id);
        let mut resources = p.resources();
        let mut font_map = resources.fonts();
        for (font, id, _) in fonts {
            font_map.pair(font.resource(), id);
        }
        font_map.finish();
        resources.finish();
        p.finish();

        let mut content = Content::new();
        let footer = Placed {
            x: MARGIN,
            y: FOOTER_Y,
            font: Font::Regular,
            size: 6.5,
            bytes: win_ansi(&footer_text(i)),
        };
        for line in page.iter().chain(std::iter::once(&footer)) {
            content
                .begin_text()
                .set_font(line.font.resource(), line.size)
                .next_line(line.x, line.y)
                .show(Str(&line.bytes))
                .end_text();
        }
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}

/// "250.00 USD": the currency's decimals, then its code.
fn amount(m: Money) -> String {
    format!("{} {}", currency::decimal(m.minor, m.currency.code()), m.currency)
}

/// "2026-04-01 17:00 UTC".
fn due(micros: i64) -> String {
    let t = rfc3339(micros);
    format!("{} {} UTC", &t[..10], &t[11..16])
}

fn list(items: impl IntoIterator<Item = &'static str>) -> String {
    items.into_iter().collect::<Vec<_>>().join(", ")
}

fn terms_pages(flow: &mut Flow, record: &Paper<'_>) {
    let doc = &record.document;
    let terms = &doc.terms;
    flow.title("Influencer agreement");
    flow.small(&format!("{}, terms version {}", doc.contract, doc.terms_version));
    flow.small(&format!("Terms SHA-256: {}", record.terms_sha256));

    flow.heading("Parties");
    flow.item(&format!(
        "Brand: {} (tenant {})",
        doc.brand.display_name, doc.brand.tenant
    ));
    flow.item(&format!("Influencer: {}", doc.influencer));
    flow.item(&format!("Campaign: {}", doc.campaign));

    deliverables(flow, terms);
    compensation(flow, terms);

    flow.heading("Usage rights");
    let usage = terms.usage_rights();
    if usage.channels.is_empty() && usage.days == 0 {
        flow.text("None: the brand may not use the content beyond the influencer's own posts.");
    } else {
        let channels = if usage.channels.is_empty() {
            "no channel named".to_owned()
        } else {
            list(usage.channels.iter().map(|c| c.label()))
        };
        flow.text(&format!(
            "The brand may use the content on: {channels}; for {} days.",
            usage.days
        ));
    }
    flow.text(if usage.paid_amplification {
        "Paid amplification: the brand may boost the posts with paid media."
    } else {
        "No paid amplification."
    });

    flow.heading("Exclusivity");
    flow.text_or_none(terms.exclusivity().map(|x| {
        format!(
            "For {} days from activation the influencer works with no competitor in the category \"{}\".",
            x.days, x.category
        )
    }));

    flow.heading("Ad disclosure");
    let language = terms.disclosure_language().map_or_else(
        || "the jurisdiction's first language".to_owned(),
        |l| format!("language \"{l}\""),
    );
    flow.text(&format!(
        "Every post discloses the paid partnership as the rules of jurisdiction {} require, in {language}.",
        terms.disclosure_jurisdiction()
    ));

    flow.heading("Content review");
    flow.text(if terms.content_review() {
        "The brand reviews each post before it is approved."
    } else {
        "None: a post whose disclosure is compliant is approved when submitted."
    });

    flow.heading("Reporting");
    flow.text_or_none(terms.reporting().map(|r| {
        format!(
            "Within {} days after publishing each approved post, the influencer reports: {}.",
            r.due_days_after_post,
            list(r.metrics.iter().map(|m| m.name()))
        )
    }));

    flow.heading("Grace period");
    flow.text(&format!(
        "A post still missing {} days after its due date breaches the contract.",
        terms.grace_days()
    ));

    flow.heading("Notes");
    let notes = terms.notes();
    flow.text_or_none((!notes.trim().is_empty()).then(|| notes.to_owned()));
}

fn deliverables(flow: &mut Flow, terms: &Terms) {
    flow.heading("Deliverables");
    for (i, d) in terms.deliverable_terms().iter().enumerate() {
        flow.item(&format!(
            "{}. {} \u{d7} {} on {}, each due by {}",
            i + 1,
            d.count,
            d.kind.label(),
            d.platform.label(),
            due(d.due_micros)
        ));
        if !d.brief.trim().is_empty() {
            flow.wrapped(Font::Regular, 10.0, 2.0 * INDENT, &format!("Brief: {}", d.brief));
        }
    }
}

fn compensation(flow: &mut Flow, terms: &Terms) {
    flow.heading("Compensation");
    let c = terms.compensation();
    match c.cash {
        Some(cash) => {
            let releases = terms.cash_releases();
            let schedule = match (releases.first(), releases.last()) {
                (Some(first), Some(last)) if releases.len() > 1 && first == last => {
                    format!(
                        ", released in {} parts of {} as posts are approved",
                        releases.len(),
                        amount(*first)
                    )
                }
                (Some(first), Some(last)) if releases.len() > 1 => format!(
                    ", released in {} parts as posts are approved: {} each, the last {}",
                    releases.len(),
                    amount(*first),
                    amount(*last)
                ),
                _ => ", released when the post is approved".to_owned(),
            };
            flow.item(&format!("Cash: {}{schedule}", amount(cash)));
        }
        None => flow.item("Cash: none"),
    }
    if !c.gift_cards.is_empty() {
        flow.item("Gift cards:");
        for g in &c.gift_cards {
            flow.wrapped(
                Font::Regular,
                10.0,
                2.0 * INDENT,
                &format!("{} gift card, {}", g.brand, amount(g.value)),
            );
        }
    }
    if !c.products.is_empty() {
        flow.item("Products:");
        for p in &c.products {
            flow.wrapped(
                Font::Regular,
                10.0,
                2.0 * INDENT,
                &format!(
                    "{} \u{d7} {} (SKU {}), declared value {} each",
                    p.quantity,
                    p.title,
                    p.sku,
                    amount(p.declared_value)
                ),
            );
        }
    }
    flow.item(&format!("Total value: {}", amount(terms.total_value())));
}

fn audit_page(flow: &mut Flow, record: &Paper<'_>) {
    flow.title("Audit trail");
    flow.small(&format!(
        "{}, terms version {}",
        record.document.contract, record.document.terms_version
    ));
    for (i, s) in record.audit.iter().enumerate() {
        flow.heading(&format!("Signature {}: the {}", i + 1, s.party.label()));
        flow.item(&format!("Signer: {}", s.signer));
        flow.item(&format!("Signed at: {}", rfc3339(s.sign_micros)));
        flow.item(&format!("IP address: {}", s.ip_address));
        flow.item(&format!("User agent: {}", s.user_agent));
        flow.item(&format!("Terms version: {}", s.terms_version));
        flow.code("Terms SHA-256 signed:", &s.terms_sha256);
    }
    flow.heading("Seal");
    flow.code("Terms SHA-256:", record.terms_sha256);
    match record.seal {
        Some(seal) => {
            flow.item(&format!("Sealed at: {}", rfc3339(seal.seal_micros)));
            flow.item(&format!("Algorithm: {} (Ed25519)", seal.algorithm));
            flow.code("Key id (RFC 7638 thumbprint):", &seal.key_id);
            flow.code("Signature (base64url):", &seal.signature);
        }
        None => flow.item("Not sealed yet: the platform seals the contract once both parties have signed."),
    }
    flow.subheading("Checking this contract");
    flow.text(
        "The sealed JSON record of this contract (GetContractDocument, format SEALED_JSON) is \
         what the seal protects; this page renders it. Recompute the SHA-256 of the document's \
         RFC 8785 canonical JSON and check the seal with the public keys GetSealingKeys lists.",
    );
}

/// `text` in WinAnsiEncoding (PDF 32000-1, annex D); what it lacks becomes '?', control
/// characters a space.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '\u{20}'..='\u{7e}' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            c if c.is_control() => b' ',
            c => WIN_ANSI_HIGH.iter().find(|(_, u)| *u == c).map_or(b'?', |(b, _)| *b),
        })
        .collect()
}

/// WinAnsi's bytes 0x80..0x9F that are not Latin-1.
const WIN_ANSI_HIGH: [(u8, char); 27] = [
    (0x80, '\u{20ac}'),
    (0x82, '\u{201a}'),
    (0x83, '\u{0192}'),
    (0x84, '\u{201e}'),
    (0x85, '\u{2026}'),
    (0x86, '\u{2020}'),
    (0x87, '\u{2021}'),
    (0x88, '\u{02c6}'),
    (0x89, '\u{2030}'),
    (0x8a, '\u{0160}'),
    (0x8b, '\u{2039}'),
    (0x8c, '\u{0152}'),
    (0x8e, '\u{017d}'),
    (0x91, '\u{2018}'),
    (0x92, '\u{2019}'),
    (0x93, '\u{201c}'),
    (0x94, '\u{201d}'),
    (0x95, '\u{2022}'),
    (0x96, '\u{2013}'),
    (0x97, '\u{2014}'),
    (0x98, '\u{02dc}'),
    (0x99, '\u{2122}'),
    (0x9a, '\u{0161}'),
    (0x9b, '\u{203a}'),
    (0x9c, '\u{0153}'),
    (0x9e, '\u{017e}'),
    (0x9f, '\u{0178}'),
];

/// Helvetica's advance widths (Adobe's AFM, 1/1000 em) for ASCII 0x20..=0x7E.
const HELVETICA_ASCII: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' '../
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0..?
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // @..O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // P.._
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // `..o
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // p..~
];

/// The width of `c` in Helvetica; beyond ASCII a generous estimate (wider wraps earlier, never
/// past the margin).
fn helvetica_width(c: char) -> u32 {
    match c {
        ' '..='~' => u32::from(HELVETICA_ASCII[c as usize - 0x20]),
        '\u{2026}' | '\u{2030}' | '\u{2014}' | '\u{2122}' | '\u{152}' | '\u{153}' | '\u{c6}' | '\u{e6}' => 1000,
        '\u{c0}'..='\u{df}' | '\u{a9}' | '\u{ae}' => 778,
        _ => 667,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win_ansi_keeps_latin_1_and_cp1252_and_marks_the_rest() {
        assert_eq!(win_ansi("Zürich"), b"Z\xfcrich");
        assert_eq!(win_ansi("€5 \u{2014} \u{201c}ok\u{201d}"), b"\x805 \x97 \x93ok\x94");
        assert_eq!(win_ansi("東京 😀"), b"?? ?");
        assert_eq!(win_ansi("a\tb"), b"a b");
    }

    #[test]
    fn wrapping_keeps_lines_within_the_width() {
        let text = "The brand may use the content on organic social and paid social for ninety days. ".repeat(5);
        let lines = wrap(text.trim(), Font::Regular, 10.0, 200.0);
        assert!(lines.len() > 5, "{lines:?}");
        assert!(lines.iter().all(|l| Font::Regular.width(l, 10.0) <= 200.0));
        assert_eq!(lines.join(" "), text.trim());
        let long = "x".repeat(500);
        let cut = wrap(&long, Font::Mono, 10.0, 100.0);
        assert!(cut.iter().all(|l| l.chars().count() <= 16), "{cut:?}");
        assert_eq!(cut.concat(), long);
        assert_eq!(wrap("", Font::Regular, 10.0, 100.0), [""]);
    }

    #[test]
    fn long_flows_continue_on_new_pages() {
        let mut flow = Flow::default();
        flow.title("t");
        for i in 0..200 {
            flow.heading(&format!("h{i}"));
            flow.text("line");
        }
        let pages = paginate(&flow);
        assert!(pages.len() > 3);
        for page in &pages {
            assert!(page.iter().all(|l| l.y >= BOTTOM && l.y <= PAGE_HEIGHT - MARGIN));
            // No page ends with a heading.
            assert_ne!(page.last().map(|l| l.font), Some(Font::Bold));
        }
    }
}
