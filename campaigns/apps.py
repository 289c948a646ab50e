from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import tracking

        from crm.signals import campaign_recipient_owner, customer_exporting
        from recommendations.signals import recommendations_refreshed

        from . import checks, tasks  # noqa: F401  (system checks; how the services' jobs are enqueued, crm.jobs)
        from .receivers import (
            anymail_tracking_received,
            export_campaign_history,
            recipient_owner,
            recommendations_refreshed_received,
        )

        customer_exporting.connect(export_campaign_history, dispatch_uid="campaigns.export_campaign_history")
        campaign_recipient_owner.connect(recipient_owner, dispatch_uid="campaigns.recipient_owner")
        tracking.connect(anymail_tracking_received, dispatch_uid="campaigns.anymail_tracking")
        recommendations_refreshed.connect(recommendations_refreshed_received, dispatch_uid="campaigns.recs_refreshed")
