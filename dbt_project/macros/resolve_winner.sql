{#- The survivorship window: one place for the order that picks a golden value.

    For each partition (a person's attribute) the candidates are ranked:
      -. placeholders last (`is_placeholder`: config identity.blocklist, e.g. info@...):
         a role mailbox or test address never wins over a real value;
      -. with gold.demote_implausible, implausible values next to last
         (`is_implausible`: over their attribute's length limit or holding control
         characters): a 10,000-character e-mail never wins over a real one;
      0. the attribute's survivorship rule from config (gold.survivorship):
         source_priority -> its source order first; most_frequent -> the value most of
         the person's records hold first; most_recent_unless_typo -> the spellings a
         typo away from the latest value (`c360_typo_close`) first, among them the one
         most records hold, then the older (a newer value a typo away from an older one
         another record holds is a duplicate's typo; a different value is a change, and
         the latest wins); most_recent (default) -> nothing extra;
      1. latest field time (`field_time`; an echo's is the field time of the value a
         c360 sync sent, silver/echo.py);
      1b. not an echo (`is_echo`): what a sync wrote, landed back, loses a tie against
         any other candidate, whatever their confidence;
      2. higher `confidence`;
      3. better source priority (source_priority.csv, 1 = most trusted);
      4. later ingestion (`ingestion_order`: landing date, file, line);
      5. record node id (only to make the order total).
    Returns the candidates with `rule`, `candidate_rank` (1 = the winner) and
    `candidate_records` (the partition's size).
-#}
{% macro resolve_winner(candidates, partition_by=['customer_id', 'attribute'], attribute='attribute') %}
  {%- set rules = c360_setting('survivorship') -%}
  {%- set by_priority = [] -%}
  {%- set by_frequency = [] -%}
  {%- set by_typo = [] -%}
  {%- for name, rule in rules.items() -%}
    {%- if rule['rule'] == 'source_priority' -%}{%- do by_priority.append(name) -%}{%- endif -%}
    {%- if rule['rule'] == 'most_frequent' -%}{%- do by_frequency.append(name) -%}{%- endif -%}
    {%- if rule['rule'] == 'most_recent_unless_typo' -%}{%- do by_typo.append(name) -%}{%- endif -%}
  {%- endfor %}
  {%- set counted = by_frequency + by_typo -%}
  {%- set latest_first -%}
        field_time desc,
        case when is_echo then 1 else 0 end,
        confidence desc,
        source_priority,
        ingestion_order desc,
        record_node_id
  {%- endset -%}
  {%- set demoted -%}
        case when is_placeholder then 1 else 0 end,
        {%- if c360_setting('demote_implausible') %}
        case when is_implausible then 1 else 0 end,
        {%- endif %}
  {%- endset %}
  select
    ranked.*,
    count(*) over (partition by {{ partition_by | join(', ') }}) as candidate_records,
    row_number() over (
      partition by {{ partition_by | join(', ') }}
      order by
        {{ demoted }}
        {%- if by_priority %}
        rule_source_rank,
        {%- endif %}
        {%- if by_frequency %}
        rule_frequency desc,
        {%- endif %}
        {%- if by_typo %}
        rule_typo_family,
        rule_family_frequency desc,
        case when rule_typo_family = 0 and rule_family_frequency > 0
             then field_time end asc nulls last,
        {%- endif %}
        {{ latest_first }}
    ) as candidate_rank
  from (
    select
      c.*,
      {{ survivorship_rule('c.' ~ attribute) }} as rule
      {%- if by_priority %},
      case
      {%- for name in by_priority %}
        {%- set order = rules[name]['sources'] or [] %}
        when c.{{ attribute }} = '{{ name }}' then
          case c.source_system
          {%- for source in order %}
            when '{{ source }}' then {{ loop.index }}
          {%- endfor %}
            else 100 + c.source_priority end
      {%- endfor %}
        else 0 end as rule_source_rank
      {%- endif %}
      {%- if by_frequency %},
      case when c.{{ attribute }} in ('{{ by_frequency | join("', '") }}')
           then coalesce(frequency.holders, 0) else 0 end as rule_frequency
      {%- endif %}
      {%- if by_typo %},
      -- Whether this value is a typo away from the latest one (or is it).
      case when c.{{ attribute }} in ('{{ by_typo | join("', '") }}')
                and not {{ c360_typo_close('c.value', 'c.rule_latest_value') }}
           then 1 else 0 end as rule_typo_family,
      case when c.{{ attribute }} in ('{{ by_typo | join("', '") }}')
           then coalesce(frequency.holders, 0) else 0 end as rule_family_frequency
      {%- endif %}
    {%- if by_typo %}
    from (
      -- The latest value of each partition, in the default order.
      select candidates.*, first_value(value) over (
        partition by {{ partition_by | join(', ') }}
        order by {{ demoted }} {{ latest_first }}) as rule_latest_value
      from {{ candidates }} as candidates
    ) as c
    {%- else %}
    from {{ candidates }} as c
    {%- endif %}
    {%- if counted %}
    -- How many of the person's records hold each value (most_frequent and
    -- most_recent_unless_typo attributes only).
    left join (
      select {{ partition_by | join(', ') }}, value, count(*) as holders
      from {{ candidates }}
      where {{ attribute }} in ('{{ counted | join("', '") }}')
        and not is_echo  -- a write-back echoed is no second record holding the value
      group by {{ partition_by | join(', ') }}, value
    ) as frequency
      on {% for column in partition_by %}frequency.{{ column }} = c.{{ column }} and {% endfor -%}
         frequency.value = c.value
    {%- endif %}
  ) as ranked
{%- endmacro %}


{#- The rule name per attribute, for provenance. -#}
{% macro survivorship_rule(attribute) %}
  {%- set rules = c360_setting('survivorship') -%}
  case {{ attribute }}
  {%- for name, rule in rules.items() %}
    when '{{ name }}' then '{{ rule["rule"] }}'
  {%- endfor %}
    else 'most_recent' end
{%- endmacro %}
