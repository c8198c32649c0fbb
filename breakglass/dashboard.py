from django.shortcuts import render


def home(request):
    """The console's landing page: what needs attention in each area."""
    return render(request, "console/home.html")
