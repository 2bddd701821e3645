with source as ({{ dedupe(source('clever', 'terms'), newest_first=none) }}),  -- an id served twice keeps its newest copy

final as (
    select {{ clever_ids('term_id', with_clever_district=false) }}, {{ trimmed('name', 'start_date', 'end_date') }}
    from source
)

select * from final
