-- Promo-code leak detection (src/domain/leaks.rs): when a code was flagged as suspected leaked
-- (PromoCodeLeakSuspected emitted), in microseconds; 0 while it was not. Set once, in the
-- transaction of the conversions that tipped it, so later orders do not emit again.
ALTER TABLE promo_codes ADD COLUMN leak_time BIGINT NOT NULL DEFAULT 0;
