-- A laptop's session is bound to the fingerprint it started with: staff may allow one change
-- (an audited action), which the next resume from another device consumes.
ALTER TABLE sessions ADD COLUMN device_change_allowed boolean NOT NULL DEFAULT false;

-- The paired phone's renewable credential: the SHA-256 of a secret handed to the phone at
-- claim, bound to its fingerprint. It renews the phone's access token for as long as the
-- session is STARTED and this phone is the paired one; an unpair or a new claim replaces it.
ALTER TABLE sessions ADD COLUMN mobile_device_token_hash text;
ALTER TABLE sessions ADD COLUMN mobile_device_fingerprint text;
