from django import forms

from breakglass.access.models import BackupPath


class KillSwitchForm(forms.Form):
    action = forms.ChoiceField(choices=[("engage", "Engage"), ("release", "Release")])
    reason = forms.CharField(max_length=500)


class BlackoutForm(forms.Form):
    starts_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    ends_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    reason = forms.CharField(max_length=200)

    def clean(self):
        data = super().clean()
        if data.get("starts_at") and data.get("ends_at") and data["ends_at"] <= data["starts_at"]:
            raise forms.ValidationError("The window must end after it starts.")
        return data


class GameDayForm(forms.Form):
    name = forms.CharField(max_length=150)
    paths = forms.ModelMultipleChoiceField(queryset=BackupPath.objects.filter(is_active=True))
    participants = forms.IntegerField(min_value=1, max_value=1000, initial=20)
    concurrency = forms.IntegerField(min_value=1, max_value=200, initial=8)


class ReportWindowForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=3650, initial=7)
