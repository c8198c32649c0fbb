#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "breakglass.project.settings")
    from breakglass.project.files import private_umask_apply

    private_umask_apply()  # before settings create the data folder
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A configuration mistake is the operator's to fix: say what, not where in Django.
        print(f"Configuration error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        # An outage (database or broker unreachable) is one line and EX_TEMPFAIL, for every
        # command; anything else is a bug and keeps its traceback.
        from breakglass.project.transient import outage_problem

        problem = outage_problem(exc)
        if problem is None:
            raise
        command = sys.argv[1] if len(sys.argv) > 1 else "manage.py"
        print(f"{command}: {problem}", file=sys.stderr)
        sys.exit(75)


if __name__ == "__main__":
    main()
