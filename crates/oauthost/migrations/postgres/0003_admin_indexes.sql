-- The admin site lists and drills down authorization codes by issue time.
CREATE INDEX oauthost_authorization_codes_issued ON oauthost_authorization_codes (issued_at);
