{#- The newest value of `column_name` is at most `hours` old (default: the setting
    gold.profile_recency_hours). An empty model passes: there is nothing stale in it. -#}
{% test recent_within_hours(model, column_name, hours=none) %}
{%- set hours = hours if hours is not none else c360_setting('profile_recency_hours') -%}
select max({{ column_name }}) as newest
from {{ model }}
having max({{ column_name }}) < {{ dbt.dateadd('hour', -1 * (hours | int), dbt.current_timestamp()) }}
{% endtest %}
