with admins as (
    select * from {{ ref('int_admins__scoped') }}
    where district_id = {{ district_id() }} and exclusion_reason is null
),

final as (
    select distinct
        district_id, user_id, role, school_id, first_name, last_name, email, title
    from admins
)

select * from final
