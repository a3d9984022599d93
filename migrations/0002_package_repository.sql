-- Package repository: the modification time of each indexed .deb (a rescan re-hashes only
-- files whose size or time changed) and, per runtime, the install details the server adds to
-- the seed's RuntimePackage document (JSON text: dpkg steps and warnings).
-- Portable SQL: the same file runs on SQLite and PostgreSQL.

ALTER TABLE package_files ADD COLUMN modified_ns BIGINT NOT NULL DEFAULT 0;

ALTER TABLE runtime_packages ADD COLUMN details TEXT;
