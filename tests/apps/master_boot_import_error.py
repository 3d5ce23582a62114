"""An app module that cannot be imported (a deploy with a broken module)."""

raise RuntimeError("MASTER-BOOT-SENTINEL: settings module is missing DATABASE_URL")
