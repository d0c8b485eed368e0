-- 009_client_subject.sql - a tenant bound to a client certificate.
--
-- With client_subject set, the gateway serves the tenant's keys only on a
-- TLS connection whose client certificate (verified against
-- tls_client_ca_file) has exactly this subject, as RFC 2253 writes it
-- (e.g. 'O=Example,CN=app-billing'). NULL: any connection.
ALTER TABLE tenants
    ADD COLUMN client_subject text
        CHECK (client_subject IS NULL OR length(client_subject) BETWEEN 1 AND 1024);
