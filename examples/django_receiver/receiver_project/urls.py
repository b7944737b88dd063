from django.urls import path

from receiver_project.views import receive

urlpatterns = [path("webhooks", receive)]
