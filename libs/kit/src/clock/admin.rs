//! The ClockService every service serves on its own port: the business time of its process, and
//! (when the process runs a simulated clock, as `chorus up --simulated-clock` does) a way to
//! move it ahead, so the lifecycle simulator passes due dates and grace periods in seconds.
//! Needs the scope `admin.clock`.

use std::time::Duration;

use chorus_proto::admin::clock_service_server::ClockService;
use chorus_proto::admin::{AdvanceClockRequest, AdvanceClockResponse, GetTimeRequest, GetTimeResponse};
use tonic::{Request, Response, Status};

use super::{Clock, timestamp};
use crate::auth::Caller;
use crate::error::{Error, ErrorCode};

/// The scope every method needs.
pub const SCOPE: &str = "admin.clock";

/// The furthest one AdvanceClock may move the clock.
pub const MAX_ADVANCE: Duration = Duration::from_secs(3650 * 86_400);

/// The ClockService of one process's clock.
#[derive(Debug, Clone)]
pub struct ClockAdmin {
    clock: Clock,
}

impl ClockAdmin {
    pub fn new(clock: Clock) -> Self {
        ClockAdmin { clock }
    }
}

/// `by` as a duration more than zero and at most [`MAX_ADVANCE`].
fn advance_by(by: Option<&prost_types::Duration>) -> Result<Duration, Error> {
    let Some(by) = by else {
        return Err(Error::invalid_field("by", "required: how far to move the clock"));
    };
    let ok = by.seconds >= 0 && (0..1_000_000_000).contains(&by.nanos) && (by.seconds, by.nanos) != (0, 0);
    let by = Duration::new(
        u64::try_from(by.seconds).unwrap_or(0),
        u32::try_from(by.nanos).unwrap_or(0),
    );
    if !ok || by > MAX_ADVANCE {
        return Err(Error::invalid_field(
            "by",
            "must be more than 0 and at most 3650 days (the clock never goes back)",
        ));
    }
    Ok(by)
}

#[tonic::async_trait]
impl ClockService for ClockAdmin {
    async fn get_time(&self, request: Request<GetTimeRequest>) -> Result<Response<GetTimeResponse>, Status> {
        Caller::of(&request)?.require(SCOPE)?;
        Ok(Response::new(GetTimeResponse {
            now: Some(self.clock.now()),
            simulated: self.clock.is_driven(),
        }))
    }

    async fn advance_clock(
        &self,
        request: Request<AdvanceClockRequest>,
    ) -> Result<Response<AdvanceClockResponse>, Status> {
        Caller::of(&request)?.require(SCOPE)?;
        let by = advance_by(request.get_ref().by.as_ref())?;
        if !self.clock.is_driven() {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                "the clock is the system's and cannot be moved; start chorus up with --simulated-clock",
            )
            .with_reason("CLOCK_NOT_SIMULATED")
            .into());
        }
        let now = self.clock.advance(by)?;
        tracing::info!(by_s = by.as_secs(), "business time moved ahead");
        Ok(Response::new(AdvanceClockResponse {
            now: Some(timestamp(now)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advance_must_be_ahead_and_bounded() {
        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(advance_by(Some(&d(86_400, 0))).unwrap(), Duration::from_secs(86_400));
        assert_eq!(advance_by(Some(&d(0, 1_000))).unwrap(), Duration::from_nanos(1_000));
        for bad in [d(0, 0), d(-1, 0), d(0, -5), d(3651 * 86_400, 0)] {
            let e = advance_by(Some(&bad)).unwrap_err();
            assert_eq!(e.violations()[0].field, "by", "{bad:?}");
        }
        assert!(advance_by(None).is_err());
    }
}
