"""Make the audit table append-only on PostgreSQL: a trigger refuses UPDATE, DELETE and
TRUNCATE, whoever the client is. On SQLite this migration does nothing (the hash chain
still detects changes there; it just cannot prevent them).

This stops the application, a buggy migration or a careless `psql` session from
rewriting history. It does not stop the database owner, who can disable triggers: that
is what the hash chain and `verify_audit --checkpoint` are for.

TRUNCATE is allowed only when the session sets `breakglass.audit_truncate = 'allow'`,
which the test settings do so that Django can flush tables between transactional tests.
"""

from django.db import migrations

TABLE = "audit_auditevent"

FORWARD = f"""
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND current_setting('breakglass.audit_truncate', true) = 'allow' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_refuse_update_delete
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_refuse_truncate
    BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
"""

BACKWARD = f"""
DROP TRIGGER IF EXISTS audit_refuse_truncate ON {TABLE};
DROP TRIGGER IF EXISTS audit_refuse_update_delete ON {TABLE};
DROP FUNCTION IF EXISTS audit_refuse_change();
"""


def _run(sql):
    def operation(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            # A plain cursor without parameters, so RAISE's "%" placeholders pass through.
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)

    return operation


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_create_audit_event")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
