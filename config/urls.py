from django.contrib import admin
from django.urls import path

from config import views

admin.site.site_header = "Warden administration"

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
]
