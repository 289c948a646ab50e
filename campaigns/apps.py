from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import tracking

        from recommendations.signals import recommendations_refreshed

        from .receivers import anymail_tracking_received, recommendations_refreshed_received

        tracking.connect(anymail_tracking_received, dispatch_uid="campaigns.anymail_tracking")
        recommendations_refreshed.connect(recommendations_refreshed_received, dispatch_uid="campaigns.recs_refreshed")
