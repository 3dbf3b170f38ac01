//! How many captions a second the disclosure checker judges on one core, in process; and
//! CheckDisclosure's throughput over gRPC against an empty handler's, in the same run.
//!
//! ```sh
//! cargo run --release -p chorus-contracts --example bench_disclosure [-- SECONDS [given]]
//! cargo run --release -p chorus-contracts --example bench_disclosure -- grpc [SECONDS [IN_FLIGHT [ROUNDS]]]
//! ```
//!
//! A mix of realistic captions (about 150-400 characters, six rule sets, good, buried, late,
//! vague, foreign and missing labels, stories and videos), checked round-robin: once with the
//! language given (the checker alone) and once with it empty (language detection included).
//!
//! `grpc`: the same requests (language given) over loopback gRPC, closed loop, IN_FLIGHT calls
//! at a time (64) over four HTTP/2 connections, for SECONDS (5) against each of two servers in
//! this process: a plain tonic `DisclosureService` that answers every call with an empty
//! response at once, and the contracts service as it runs (the kit's runtime: token check,
//! telemetry, the checker). The two alternate for ROUNDS (3) rounds; it prints each run's calls
//! per second and latency, and the service's throughput over the empty handler's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use chorus_contracts::domain::disclosure::Checker;
use chorus_proto::contracts::{CheckDisclosureRequest, Connection, Media, Prominence, VideoDisclosure};
use chorus_proto::types::{DeliverableKind, Platform};

mod grpc;

// As the service's binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CAPTIONS: &[(&str, &str, &str)] = &[
    (
        "US",
        "en",
        "#ad Loving my new Voltra Glide running shoes: 40 miles in and my knees have never felt better! The cushioning is soft without feeling mushy, and the outsole grips on wet trails. Code VOLTRA15 takes 15% off 🏃‍♀️ #running #marathontraining",
    ),
    (
        "US",
        "en",
        "Sunday reset with the kids: we baked banana bread, cleaned out the craft drawer and finally tried the Kinderly clay kit everyone keeps asking about. Verdict: messy, calm, perfect. #momlife #crafts #kidsactivities #sundayfunday #ad #rainyday",
    ),
    (
        "US",
        "en",
        "Three ways I'm styling the Lumière silk scarf this fall 🍂 knotted on a tote, as a headband and tied loose over a trench. Which one is your favorite? Tell me below and I'll do a full video on it next week. Thanks @lumiere for the collab!",
    ),
    (
        "US",
        "en",
        "Voltra gave me these trail shoes to try. First impressions after a muddy 10k: grippy, light and surprisingly warm. Full review once I pass 100 miles in them, and yes I'll tell you if they fall apart. #trailrunning #gearreview",
    ),
    (
        "US",
        "en",
        "I have been drinking this cold brew every morning for a month and honestly it changed my routine: smooth, not bitter, and it keeps in the fridge for a week. Link in bio if you want to try it, and I earn a small commission if you buy through it. #coffee",
    ),
    (
        "US",
        "es",
        "#publicidad Probé el nuevo protector solar de Brisa durante mis vacaciones en la playa y la verdad es que no me dejó la cara blanca ni grasosa. Lo recomiendo para pieles mixtas como la mía ☀️ #verano #skincare",
    ),
    (
        "GB",
        "en",
        "Ad | My three desk essentials from Kinderly's new stationery range: the dotted notebook, the twin-tip pens and the little brass clip that holds everything together. Links are in my bio and code KIND10 gets you 10% off until Sunday.",
    ),
    (
        "GB",
        "en",
        "Spent the weekend at the Harbour Hotel in Brighton and honestly I did not want to leave. The sea-view room, the breakfast, the spa! Thank you @harbourhotels for having me, it was the perfect reset after a hectic month #gifted #brighton #staycation",
    ),
    (
        "DE",
        "de",
        "Werbung | Seit drei Wochen teste ich die neue Laufjacke von Voltra bei jedem Wetter und bin begeistert: leicht, winddicht und mit Reflektoren für die dunklen Abende. Mit dem Code LAUF10 spart ihr zehn Prozent 🏃 #laufen #training",
    ),
    (
        "DE",
        "de",
        "Mein Frühstück der Woche: Overnight Oats mit Beeren, Nüssen und dem neuen Haferdrink von Hafermilch & Co, der endlich nicht nach Pappe schmeckt. Rezept in den Kommentaren! #frühstück #vegan #haferflocken #gesundessen #foodblogger #ad",
    ),
    (
        "FR",
        "fr",
        "Publicité – Ma routine du soir avec la nouvelle crème de nuit Lumière : texture fondante, parfum léger et une peau vraiment plus reposée au réveil après deux semaines. Code LUMI15 pour quinze pour cent de réduction ✨ #skincare #routine",
    ),
    (
        "FR",
        "fr",
        "Un week-end à Lyon entre amis : bouchons, balades sur les quais et une nuit dans un hôtel magnifique. Merci @hotellumiere pour l'accueil, c'était parfait ! #partenariat #lyon #weekend #voyage #france",
    ),
    (
        "ES",
        "es",
        "Publi | Llevo un mes usando la nueva aspiradora de Brisa y mi piso nunca había estado tan limpio: silenciosa, potente y la batería dura toda la casa. Con el código BRISA10 tenéis un diez por ciento de descuento 🧹 #hogar #limpieza",
    ),
    (
        "ES",
        "es",
        "Mi rutina de mañana en cinco pasos: agua con limón, estiramientos, un café sin prisas, diez minutos de lectura y salir a caminar con el perro. Gracias a @brisa por estas zapatillas tan cómodas 💛 #rutina #bienestar #mañanas",
    ),
];

/// Each caption's brand, as a campaign would send it: its name and its handle.
const BRANDS: &[(&str, &str)] = &[
    ("Voltra", "@voltra"),
    ("Kinderly", "@kinderly"),
    ("Lumière", "@lumiere"),
    ("Voltra", "@voltra"),
    ("Brisa", "@brisacoffee"),
    ("Brisa", "@brisa"),
    ("Kinderly", "@kinderly"),
    ("Harbour Hotels", "@harbourhotels"),
    ("Voltra", "@voltra_de"),
    ("Hafermilch & Co", "@hafermilch"),
    ("Lumière", "@lumiere"),
    ("Hôtel Lumière", "@hotellumiere"),
    ("Brisa", "@brisa_es"),
    ("Brisa", "@brisa"),
];

fn requests(language_given: bool) -> Vec<CheckDisclosureRequest> {
    let mut out = Vec::new();
    for (i, (jurisdiction, language, text)) in CAPTIONS.iter().enumerate() {
        let mut r = CheckDisclosureRequest {
            text: (*text).to_owned(),
            platform: [Platform::Instagram, Platform::Tiktok, Platform::Facebook][i % 3] as i32,
            jurisdiction: (*jurisdiction).to_owned(),
            language: if language_given {
                (*language).to_owned()
            } else {
                String::new()
            },
            connections: vec![Connection::Cash as i32, Connection::DiscountCode as i32][..1 + i % 2].to_vec(),
            conditions_attached: i % 3 != 0,
            brand_names: vec![BRANDS[i].0.into(), BRANDS[i].1.into()],
            platform_label_used: i % 4 == 0,
            media: None,
        };
        out.push(r.clone());
        // The same text as a story of three frames, and as a video.
        if i % 5 == 0 {
            let third = text.len() / 3;
            let cut = (0..=third).rev().find(|&k| text.is_char_boundary(k)).unwrap_or(0);
            r.media = Some(Media {
                kind: DeliverableKind::Story as i32,
                frames: vec![text[..cut].to_owned(), text[cut..].to_owned(), "Swipe up!".to_owned()],
                video: None,
            });
            out.push(r.clone());
            r.media = Some(Media {
                kind: DeliverableKind::Video as i32,
                frames: vec![],
                video: Some(VideoDisclosure {
                    spoken: true,
                    on_screen: true,
                    at_start: true,
                    repeated: false,
                    prominence: Prominence::Clear as i32,
                }),
            });
            out.push(r);
        }
    }
    out
}

/// This thread's CPU time (Linux, /proc/thread-self/schedstat), to count captions per second
/// of CPU as well as of wall clock: on a shared machine other work takes the core now and then.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Captions per second of wall clock and, where the platform says, per second of CPU.
fn run(checker: &Checker, reqs: &[CheckDisclosureRequest], budget: Duration) -> (f64, Option<f64>) {
    // Warm up, then count whole rounds until the budget is spent.
    for r in reqs {
        black_box(checker.check(r).unwrap());
    }
    let start = Instant::now();
    let cpu_start = cpu_time();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for r in reqs {
            black_box(checker.check(black_box(r)).unwrap());
        }
        n += reqs.len() as u64;
    }
    let wall = n as f64 / start.elapsed().as_secs_f64();
    let cpu = cpu_start.zip(cpu_time()).map(|(a, b)| n as f64 / (b - a).as_secs_f64());
    (wall, cpu)
}

fn report(what: &str, (wall, cpu): (f64, Option<f64>)) {
    let cpu = cpu
        .map(|c| format!(", {c:.0} per CPU-second ({:.2} µs of CPU each)", 1e6 / c))
        .unwrap_or_default();
    println!("{what} {wall:>8.0} captions/s ({:.2} µs each){cpu}", 1e6 / wall);
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("grpc") {
        let arg = |i: usize, default: u64| std::env::args().nth(i).and_then(|s| s.parse().ok()).unwrap_or(default);
        let options = grpc::Options {
            seconds: arg(2, 5),
            in_flight: arg(3, 64) as usize,
            rounds: arg(4, 3) as usize,
            connections: 4,
        };
        return grpc::main(requests(true), options);
    }
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let budget = Duration::from_secs(seconds);
    let checker = Checker::builtin().expect("rule sets");
    let given = requests(true);
    let detect = requests(false);
    let mean_chars = given.iter().map(|r| r.text.chars().count()).sum::<usize>() / given.len();
    println!(
        "{} requests in the mix, mean caption {mean_chars} characters, {seconds} s each, one thread",
        given.len()
    );
    report("language given:   ", run(&checker, &given, budget));
    if std::env::args().nth(2).as_deref() == Some("given") {
        return;
    }
    report("language detected:", run(&checker, &detect, budget));
}
