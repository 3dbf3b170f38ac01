-- The double-entry ledger: accounts with four balances, and transfers that keep both
-- accounts' balances right after them (the history, and balances as of any time).
CREATE TABLE ledger_accounts (
    tenant          TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    currency        TEXT   NOT NULL,
    flags           BIGINT NOT NULL,
    owner           TEXT   NOT NULL,
    debits_pending  BIGINT NOT NULL,
    debits_posted   BIGINT NOT NULL,
    credits_pending BIGINT NOT NULL,
    credits_posted  BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    -- the timestamp of the last transfer that touched it: the next one's is later
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE ledger_transfers (
    tenant          TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    debit_account   TEXT   NOT NULL,
    credit_account  TEXT   NOT NULL,
    amount          BIGINT NOT NULL,
    currency        TEXT   NOT NULL,
    -- 0 single, 1 pending, 2 post pending, 3 void pending
    kind            BIGINT NOT NULL,
    pending_id      TEXT   NOT NULL,
    linked          BIGINT NOT NULL,
    code            TEXT   NOT NULL,
    reference       TEXT   NOT NULL,
    ts              BIGINT NOT NULL,
    -- a pending transfer's progress: posted so far; state 1 open, 2 posted, 3 voided (0: not pending)
    hold_posted     BIGINT NOT NULL,
    hold_state      BIGINT NOT NULL,
    debit_debits_pending   BIGINT NOT NULL,
    debit_debits_posted    BIGINT NOT NULL,
    debit_credits_pending  BIGINT NOT NULL,
    debit_credits_posted   BIGINT NOT NULL,
    credit_debits_pending  BIGINT NOT NULL,
    credit_debits_posted   BIGINT NOT NULL,
    credit_credits_pending BIGINT NOT NULL,
    credit_credits_posted  BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE INDEX ledger_transfers_by_debit ON ledger_transfers (tenant, debit_account, ts);
CREATE INDEX ledger_transfers_by_credit ON ledger_transfers (tenant, credit_account, ts);
