//! Who clicked, from the User-Agent: a known bot (the list is data, rules/bots.txt) and the
//! device class. Bots' clicks are stored, flagged, and left out of counts and attribution.

use chorus_proto::measurement::DeviceClass;

static BOTS: &str = include_str!("../../rules/bots.txt");

fn bot_tokens() -> impl Iterator<Item = &'static str> {
    BOTS.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Whether the user agent is a known bot's (an empty one counts as a bot: browsers send one).
pub fn is_bot(user_agent: &str) -> bool {
    let ua = user_agent.to_ascii_lowercase();
    ua.trim().is_empty() || bot_tokens().any(|t| ua.contains(t))
}

/// The device class of a user agent.
pub fn device(user_agent: &str) -> DeviceClass {
    if is_bot(user_agent) {
        return DeviceClass::Bot;
    }
    let ua = user_agent.to_ascii_lowercase();
    if ua.contains("ipad") || ua.contains("tablet") || (ua.contains("android") && !ua.contains("mobile")) {
        DeviceClass::Tablet
    } else if ua.contains("mobi") || ua.contains("iphone") || ua.contains("ipod") || ua.contains("android") {
        DeviceClass::Mobile
    } else if ua.contains("windows") || ua.contains("macintosh") || ua.contains("x11") || ua.contains("cros") {
        DeviceClass::Desktop
    } else {
        DeviceClass::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
    const PIXEL: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";
    const GALAXY_TAB: &str =
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
    const MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

    #[test]
    fn devices_by_user_agent() {
        assert_eq!(device(IPHONE), DeviceClass::Mobile);
        assert_eq!(device(PIXEL), DeviceClass::Mobile);
        assert_eq!(device(IPAD), DeviceClass::Tablet);
        assert_eq!(device(GALAXY_TAB), DeviceClass::Tablet);
        assert_eq!(device(MAC), DeviceClass::Desktop);
        assert_eq!(device("SomeTV/1.0"), DeviceClass::Other);
    }

    #[test]
    fn known_bots_and_link_previewers_are_bots() {
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Twitterbot/1.0",
            "curl/8.5.0",
            "",
        ] {
            assert!(is_bot(ua), "{ua}");
            assert_eq!(device(ua), DeviceClass::Bot);
        }
        for ua in [IPHONE, PIXEL, MAC] {
            assert!(!is_bot(ua), "{ua}");
        }
    }
}
