from rest_framework.routers import DefaultRouter

from jobs.api import (
    AccountViewSet,
    BackupJobViewSet,
    ClientViewSet,
    DestinationViewSet,
    NotificationTargetViewSet,
    QueueItemViewSet,
    SnapshotViewSet,
)

router = DefaultRouter()
router.register("destinations", DestinationViewSet, basename="destination")
router.register("accounts", AccountViewSet, basename="account")
router.register("jobs", BackupJobViewSet, basename="job")
router.register("queue", QueueItemViewSet, basename="queue")
router.register("snapshots", SnapshotViewSet, basename="snapshot")
router.register("clients", ClientViewSet, basename="client")
router.register("notification-targets", NotificationTargetViewSet, basename="notification-target")

urlpatterns = router.urls
