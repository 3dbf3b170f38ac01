//! Engagement rates, each with the denominator it was built on (DOMAIN.md: "store the counts
//! and which denominator was used; never compare rates built differently").

use chorus_proto::registry::{EngagementDenominator, EngagementRate, MetricsSnapshot};

/// Every rate the snapshot supports: by followers (GRIN: (likes + comments) per post /
/// followers), and by reach or impressions when those were reported.
pub fn rates(s: &MetricsSnapshot) -> Vec<EngagementRate> {
    let mut out = Vec::new();
    if s.window_posts <= 0 {
        return out;
    }
    let interactions = (s.window_likes + s.window_comments) as f64;
    if s.followers > 0 {
        let per_post = interactions / s.window_posts as f64;
        out.push(EngagementRate {
            denominator: EngagementDenominator::Followers as i32,
            rate: per_post / s.followers as f64,
        });
    }
    // Reach and impressions are totals over the same posts, so the per-post factors cancel.
    if let Some(reach) = s.window_reach.filter(|r| *r > 0) {
        out.push(EngagementRate {
            denominator: EngagementDenominator::Reach as i32,
            rate: interactions / reach as f64,
        });
    }
    if let Some(impressions) = s.window_impressions.filter(|i| *i > 0) {
        out.push(EngagementRate {
            denominator: EngagementDenominator::Impressions as i32,
            rate: interactions / impressions as f64,
        });
    }
    out
}

/// The rate by followers, the one List filters and sorts on; 0 when unknown.
pub fn by_followers(s: &MetricsSnapshot) -> f64 {
    rates(s)
        .into_iter()
        .find(|r| r.denominator == EngagementDenominator::Followers as i32)
        .map(|r| r.rate)
        .unwrap_or(0.0)
}

/// Share of the window's posts that were sponsored.
pub fn sponsored_share(s: &MetricsSnapshot) -> f64 {
    if s.window_posts <= 0 {
        0.0
    } else {
        s.window_sponsored_posts as f64 / s.window_posts as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(followers: i64, posts: i64, likes: i64, comments: i64) -> MetricsSnapshot {
        MetricsSnapshot {
            followers,
            window_posts: posts,
            window_likes: likes,
            window_comments: comments,
            ..Default::default()
        }
    }

    #[test]
    fn rate_by_followers_is_interactions_per_post_over_followers() {
        // 10 posts, 4,500 likes and 500 comments on 5,000 followers: 500 per post, 10%.
        let s = snap(5_000, 10, 4_500, 500);
        assert!((by_followers(&s) - 0.10).abs() < 1e-12);
        assert_eq!(rates(&s).len(), 1, "no reach, no impressions: one rate");
    }

    #[test]
    fn reach_and_impressions_are_named_separately() {
        let mut s = snap(5_000, 10, 900, 100);
        s.window_reach = Some(20_000);
        s.window_impressions = Some(40_000);
        let r = rates(&s);
        assert_eq!(r[1].denominator, EngagementDenominator::Reach as i32);
        assert!((r[1].rate - 0.05).abs() < 1e-12);
        assert_eq!(r[2].denominator, EngagementDenominator::Impressions as i32);
        assert!((r[2].rate - 0.025).abs() < 1e-12);
    }

    #[test]
    fn no_posts_or_followers_means_no_rate() {
        assert!(rates(&snap(5_000, 0, 0, 0)).is_empty());
        assert_eq!(by_followers(&snap(0, 3, 10, 1)), 0.0);
    }

    #[test]
    fn sponsored_share_over_the_window() {
        let mut s = snap(1, 20, 0, 0);
        s.window_sponsored_posts = 5;
        assert!((sponsored_share(&s) - 0.25).abs() < 1e-12);
    }
}
