-- How an audience sample was classified, so its fake share can be corrected for the classifier's
-- errors whenever the report is recomputed: the prior share of fakes the decision took, and that
-- decision's held-out sensitivity and specificity with the counts they were measured on. Rows
-- stored before these columns were counted by follower-classifier-v1 at P >= 0.56 (NULL here:
-- read as the decision at prior 0.44, the same cut with the same weights).
ALTER TABLE vetting_inputs ADD COLUMN audience_prior REAL;
ALTER TABLE vetting_inputs ADD COLUMN audience_sensitivity REAL;
ALTER TABLE vetting_inputs ADD COLUMN audience_specificity REAL;
ALTER TABLE vetting_inputs ADD COLUMN audience_rate_fakes BIGINT;
ALTER TABLE vetting_inputs ADD COLUMN audience_rate_reals BIGINT;
