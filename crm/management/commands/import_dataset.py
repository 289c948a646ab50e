from django.core.management.base import BaseCommand, CommandError

from crm.importers import FORMATS, DatasetImportError, dataset_import


class Command(BaseCommand):
    help = (
        "Import a dataset folder (canonical CSVs or MovieLens). Every row is validated before anything is "
        "written; re-running the same import adds nothing. See docs/import.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--format", choices=FORMATS, default="canonical")
        parser.add_argument("--skip-bad", action="store_true", help="Import the good rows and list the bad ones.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar on stderr.")

    def handle(self, *args, directory: str, format: str, skip_bad: bool, no_progress: bool, **options):
        try:
            report = dataset_import(fmt=format, directory=directory, skip_bad=skip_bad, progress=not no_progress)
        except DatasetImportError as exc:
            raise CommandError(str(exc)) from exc
        for line in report.lines():
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(f"Imported {report.directory} ({report.format})."))
