-- One database per service, as the dev secrets' URLs name them (run once, on an empty volume).
CREATE DATABASE identity OWNER chorus;
CREATE DATABASE registry OWNER chorus;
CREATE DATABASE matching OWNER chorus;
CREATE DATABASE contracts OWNER chorus;
CREATE DATABASE payouts OWNER chorus;
CREATE DATABASE measurement OWNER chorus;
CREATE DATABASE webhooks OWNER chorus;
