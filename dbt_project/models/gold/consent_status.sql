-- Each person's consent per purpose (c360.yaml privacy.consent), as of this build: the
-- latest decision for the purpose's attribute (the golden record's winner for it, which
-- is always the most recent decision, whoever recorded it), and what it means now:
-- `granted` until the grant expires (its field time plus the purpose's months),
-- `expired` after, `revoked` for a decision against. A person with no decision has no
-- row: no consent. Rebuilt whole on every gold build, since time alone moves a grant to
-- `expired`; `status_as_of` says when it was evaluated, and `expires_at` lets an exit
-- check a grant against its own clock.
{{ config(materialized='table') }}
{%- set purposes = c360_setting('consent_purposes') %}
{%- set as_of = var('c360_as_of', none) %}

with decisions as (

    {%- for purpose, attribute, months in purposes %}
    select
        customer_id,
        '{{ purpose }}' as purpose,
        value = 'true' as granted,
        field_time as decided_at,
        source_system as decided_by_source,
        record_node_id as decided_by_record,
        {%- if months | int > 0 %}
        case when value = 'true'
             then {{ c360_add_months('field_time', months | int) }} end as expires_at
        {%- else %}
        cast(null as {{ dbt.type_timestamp() }}) as expires_at
        {%- endif %}
    from {{ ref('resolved_attributes') }}
    where attribute = '{{ attribute }}'
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- if not purposes %}
    select
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as purpose,
        cast(null as {{ dbt.type_boolean() }}) as granted,
        cast(null as {{ dbt.type_timestamp() }}) as decided_at,
        cast(null as {{ dbt.type_string() }}) as decided_by_source,
        cast(null as {{ dbt.type_string() }}) as decided_by_record,
        cast(null as {{ dbt.type_timestamp() }}) as expires_at
    where false
    {%- endif %}

),

now as (

    select {% if as_of %}{{ c360_timestamp_literal(as_of) }}{% else %}{{ dbt.current_timestamp() }}{% endif %} as as_of

)

select
    decisions.customer_id,
    decisions.purpose,
    case
        when not decisions.granted then 'revoked'
        when decisions.expires_at is not null and decisions.expires_at <= now.as_of then 'expired'
        else 'granted'
    end as status,
    decisions.granted
        and (decisions.expires_at is null or decisions.expires_at > now.as_of) as allowed,
    decisions.decided_at,
    decisions.decided_by_source,
    decisions.decided_by_record,
    decisions.expires_at,
    now.as_of as status_as_of
from decisions
cross join now
